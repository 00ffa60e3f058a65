#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed for the console's
# browser tests (console/*_test.go drive it with chromedp).
#
#   chromium.sh          install Debian's chromium when missing (root with
#                        apt-get), else stop with the command to run
#
# Prints nothing when Chromium is already there. The tests themselves fail
# (never skip) with the same command when it is missing.
set -euo pipefail

INSTALL_HINT="install Chromium: sudo apt-get update && sudo apt-get install -y chromium"

find_chromium() {
	local c
	for c in "${LEDGER_CHROMIUM:-}" chromium chromium-browser google-chrome; do
		[ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && return 0
	done
	return 1
}

if find_chromium; then
	exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "chromium.sh: Chromium not found; installing it with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2 ||
		echo "chromium.sh: apt-get install chromium failed" >&2
	if find_chromium; then
		exit 0
	fi
fi
echo "$INSTALL_HINT" >&2
exit 1
