"""The demo page of `zoo serve`: request handling (requests.py) and the Gradio page (page.py)."""
