"""UI glue between the Streamlit pages and slimcore: cached loaders, session-state keys, the shared sidebar."""
