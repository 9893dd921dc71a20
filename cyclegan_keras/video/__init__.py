"""Video: clips translated frame by frame through PyAV, with instance-norm statistics along time."""
