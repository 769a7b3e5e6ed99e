"""The deployed Cloud Functions (entry points in ``main.py``) and their I/O.

Firestore, Cloud Run and HTTP live here. Imports ``core`` and ``worker``, never
``tools`` or ``bench``; ``.gcloudignore`` uploads exactly what ``main.py`` reaches.
"""
