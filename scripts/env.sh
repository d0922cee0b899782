# Sourced by the other scripts: create or reuse .venv with the project installed, and activate it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Reinstall only when the requirements or setup.py (console scripts, extras) changed since the last install.
stamp=.venv/.ddnmf-installed
if [ ! -f "$stamp" ] || ! cat requirements.txt setup.py | cmp -s - "$stamp"; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  cat requirements.txt setup.py > "$stamp"
fi
# shellcheck disable=SC1091
source .venv/bin/activate
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# Real Fashion-MNIST offline: Debian ships the IDX files (tfds cannot download without a network).
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
    || echo "note: could not install Debian's dataset-fashion-mnist; tests that need it will be skipped" >&2
fi
