"""Training: the generic loop (``trainer``), run folders (``run``: start, resume, load; ``checkpoint``,
``run_lock``, ``run_folder``), what a run shows and logs (``progress``, ``loggers``), and the test
scores at its end (``final_test``)."""
