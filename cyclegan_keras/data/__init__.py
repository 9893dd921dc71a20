"""Data: image files read robustly (``images``), dataset folders and tfds datasets (``folders``,
``tfds``), the official preprocessing (``preprocessing``), and the two training pipelines that
``--input-pipeline`` names (``tf_data``, ``python``) over one sampling plan (``plan``).
"""
