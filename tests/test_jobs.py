"""The background worker: one run per key whatever the number of askers, priorities, failures said and retried,
estimates from measured durations, bounded results; and the gate that keeps fx tracing apart from page runs."""
import threading
import time

from slimcore import jobs as J


def test_one_key_runs_once_and_is_kept():
    w, calls = J.Worker(inline=False), []
    go = threading.Event()

    def fn(progress):
        go.wait(5)
        calls.append(1)
        progress(1, 1)
        return 42

    a = w.submit("k", fn, "Working")
    b = w.submit("k", fn, "Working")           # another session asks for the same
    assert a is b and not a.done
    go.set()
    assert a.wait(5) and a.result == 42 and a.progress == (1, 1) and calls == [1]
    assert w.submit("k", fn, "Working").result == 42 and calls == [1]
    w.forget("k")
    assert w.submit("k", fn, "Working").wait(5) and calls == [1, 1]


def test_higher_priority_runs_first():
    w, order = J.Worker(inline=False), []
    block = threading.Event()
    w.submit("first", lambda p: block.wait(5), "blocking")
    time.sleep(0.1)
    for key, prio in (("warm", 0), ("visitor", 10)):
        w.submit(key, lambda p, key=key: order.append(key), key, priority=prio)
    block.set()
    assert w.get("warm").wait(5) and order == ["visitor", "warm"]


def test_a_queued_job_asked_for_again_with_priority_moves_up():
    w, order = J.Worker(inline=False), []
    block = threading.Event()
    w.submit("first", lambda p: block.wait(5), "blocking")
    time.sleep(0.1)
    w.submit("a", lambda p: order.append("a"), "a")
    w.submit("b", lambda p: order.append("b"), "b")
    w.submit("b", lambda p: order.append("b"), "b", priority=5)
    block.set()
    assert w.get("a").wait(5) and order == ["b", "a"]


def test_the_page_still_watched_goes_before_a_page_left_behind():
    w, order = J.Worker(inline=False, watched=0.3), []
    block = threading.Event()
    w.submit("first", lambda p: block.wait(5), "blocking", priority=J.VISITOR)
    time.sleep(0.1)
    for key in ("left", "shown", "also shown"):
        w.submit(key, lambda p, key=key: order.append(key), key, priority=J.VISITOR)
    time.sleep(0.4)                     # nobody polls them any more...
    w.watch("shown")                    # ...but the page on the screen polls its placeholders
    w.submit("also shown", None, "also shown", priority=J.VISITOR)   # and asks again in its rerun
    w.submit("warm", lambda p: order.append("warm"), "warm", priority=0)
    block.set()
    assert w.get("warm").wait(5) and order == ["shown", "also shown", "left", "warm"]


def test_a_failure_is_said_and_retried_only_when_asked():
    w, calls = J.Worker(inline=True), []

    def fn(progress):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("no such layer")
        return "ok"

    job = w.submit("k", fn, "Working")
    assert job.state == "failed" and job.error == "no such layer"
    assert w.submit("k", fn, "Working") is job and calls == [1]     # not in a loop
    again = w.submit("k", fn, "Working", retry=True)
    assert again.state == "done" and again.result == "ok"


def test_estimates_come_from_measured_durations():
    w = J.Worker(inline=True)
    first = w.submit("a", lambda p: time.sleep(0.05), "Timing", kind="timing", guess=9.0)
    assert first.estimate == 9.0                      # nothing measured yet: the caller's guess
    second = w.submit("b", lambda p: None, "Timing", kind="timing", guess=9.0)
    assert 0.04 < second.estimate < 1.0               # the first one's measured time
    assert "Timing" in second.status()


def test_results_are_bounded_per_kind():
    w = J.Worker(inline=True)
    for i in range(5):
        w.submit(f"m{i}", lambda p: bytearray(10), "Building", kind="int8", keep=2)
    assert [w.get(f"m{i}") is not None for i in range(5)] == [False, False, False, True, True]


def test_the_worker_waits_for_running_pages():
    w, ran = J.Worker(inline=False, yield_to_pages=5.0), threading.Event()
    gate = J.GATE
    with gate.shared():
        w.submit("k", lambda p: ran.set(), "Working")
        assert not ran.wait(0.3)                       # a page runs: the job waits
    assert ran.wait(5)


def test_exclusive_waits_for_other_pages_and_holds_new_ones_back():
    g, events = J.Gate(), []
    page_in, page_out = threading.Event(), threading.Event()

    def page():
        with g.shared():
            page_in.set()
            page_out.wait(5)
            events.append("page done")

    t = threading.Thread(target=page)
    t.start()
    page_in.wait(5)

    def trace():
        with g.exclusive():
            events.append("traced")

    tr = threading.Thread(target=trace)
    tr.start()
    time.sleep(0.2)
    assert events == []                                # the trace waits for the page
    page_out.set()
    t.join(5), tr.join(5)
    assert events == ["page done", "traced"]
    with g.shared(), g.exclusive():                    # a page may trace itself
        pass


def test_two_pages_that_both_trace_do_not_wait_for_ever(monkeypatch):
    g = J.Gate()
    monkeypatch.setattr(g, "patience", 0.3)
    both, done = threading.Barrier(2), []

    def page():
        with g.shared():
            both.wait(5)
            with g.exclusive():
                done.append(1)

    threads = [threading.Thread(target=page) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert done == [1, 1]


def test_speculative_work_waits_for_pages_and_lets_a_visitor_go_first():
    w, order = J.Worker(inline=False, yield_to_pages=0.1), []
    with J.GATE.shared():   # a page runs
        w.submit("warm", lambda p: order.append("warm"), "warm-up", priority=0)
        time.sleep(0.8)
        assert order == []   # not while a page runs (a visitor's job would have gone after 0.1 s)
        w.submit("visitor", lambda p: order.append("visitor"), "visitor", priority=10)
        assert w.get("visitor").wait(5) and order == ["visitor"]
    assert w.get("warm").wait(5) and order == ["visitor", "warm"]


def test_a_stopped_job_ends_at_its_next_progress_report_keeping_what_it_finished():
    w, finished = J.Worker(inline=False), []
    started = threading.Event()

    def pieces(progress):
        for i in range(100):
            started.set()
            time.sleep(0.02)
            finished.append(i)        # what a grid keeps on disk as each piece is done
            progress(i + 1, 100)
        return "all"

    job = w.submit("grid", pieces, "Sweeping", priority=J.VISITOR)
    assert started.wait(5) and w.stop("grid")
    assert job.wait(5) and job.state == "failed" and job.error.startswith("stopped after")
    assert 1 <= len(finished) < 100 and job.result is None
    assert not w.stop("grid")         # nothing left to stop
    w.submit("block", lambda p: time.sleep(0.5), "Blocking", priority=J.VISITOR)   # runs: the next one waits
    time.sleep(0.1)
    queued = w.submit("later", lambda p: "never", "Queued", priority=0)
    assert w.stop("later") and queued.state == "failed" and queued.error == "stopped before it started"
    assert w.submit("grid", pieces, "Sweeping", retry=True).wait(10) and w.get("grid").result == "all"
