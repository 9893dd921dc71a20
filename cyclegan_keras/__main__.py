import sys

from cyclegan_keras.cli import main

sys.exit(main())
