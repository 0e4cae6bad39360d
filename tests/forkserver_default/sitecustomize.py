"""Makes forkserver the default start method, as Python 3.14 does.

On PYTHONPATH for the checks that a lab's Python original does not depend on
the platform's default start method (tests/CMakeLists.txt).
"""
import multiprocessing

multiprocessing.set_start_method("forkserver", force=True)
