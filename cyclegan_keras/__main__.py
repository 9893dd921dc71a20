import sys

from cyclegan_keras.cli.commands import main

sys.exit(main())
