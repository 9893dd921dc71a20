"""The ``cyclegan-keras`` command line, a thin layer over the Python API.

``app`` (the entry point: errors as one line, exit statuses), ``parser`` (the commands, their flags
generated from the options each room declares), ``flags`` (that generation), ``commands`` (what each
command calls), ``demo``. Nothing here imports TensorFlow before a command needs it.
"""

from cyclegan_keras.cli.app import main as main
from cyclegan_keras.cli.parser import build_parser as build_parser
