"""The run folder: where a training run lives and resumes (``folder``), its checkpoints
(``checkpoint``), the lock that keeps one trainer per folder (``lock``), writes that never leave half a
file (``outputs``), and training on several processes or machines (``distributed``).
"""
