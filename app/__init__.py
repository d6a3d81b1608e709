"""The crowdfunding API service (FastAPI), served as `app.main:app`."""
