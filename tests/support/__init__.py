"""What the tests and the benchmarks share: apps on a temporary workspace (app.py), the live server and browser
steps (live.py, browser.py), test images and image rows (images.py), synthetic photos and annotations
(datasets.py), tiny trained models and a stand-in runner (models.py, runners.py), the world of users and objects
the security tests act in (world.py), hostile inputs (hostile.py, bad_inputs.py), the API fuzzer (fuzz.py) and a
gunicorn + Celery stack in subprocesses (stack.py).

Both tests/ and benchmarks/ import from here; neither imports the other. Nothing here is collected by pytest.
"""
