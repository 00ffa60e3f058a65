#!/usr/bin/env bash
# Make sure LibreOffice (headless Calc) is installed: the export tests open
# the XLSX, ODS and HTML exports with it and compare what it reads.
#
#   libreoffice.sh    exit 0 when soffice or libreoffice is on the PATH
#
# When it is missing and the user is root with apt-get, installs the
# smallest package that converts spreadsheets headless
# (libreoffice-calc-nogui: about a minute and 200 MB on Debian 12);
# otherwise stops with the command to run.
set -euo pipefail

INSTALL_CMD="sudo apt-get install -y --no-install-recommends libreoffice-calc-nogui"

found() { command -v soffice >/dev/null 2>&1 || command -v libreoffice >/dev/null 2>&1; }

found && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "libreoffice.sh: LibreOffice not found; installing libreoffice-calc-nogui with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2 && apt-get install -y --no-install-recommends libreoffice-calc-nogui >&2 ||
		echo "libreoffice.sh: apt-get install libreoffice-calc-nogui failed" >&2
	found && exit 0
fi
echo "libreoffice.sh: LibreOffice is needed by the export tests; install it: $INSTALL_CMD" >&2
exit 1
