"""The admin API: token management, corrections and the FastAPI app.

Importing this package imports neither FastAPI nor uvicorn (the `reminders`
command loads it at start-up); only `admin.app` does.
"""
