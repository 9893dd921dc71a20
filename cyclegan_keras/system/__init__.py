"""What the machine has and does: memory and CPU (``hardware``), memory bounds checked before work
(``budget``), the one download cache (``cache``: ``$CYCLEGAN_KERAS_HOME``), and native libraries' log
lines (``native_logs``).
"""
