"""PlatformIO's tool-scons entry point, served by the pip-installed SCons.

PlatformIO runs `python <tool-scons>/scons.py ...` for every build and would download
the tool-scons package from its registry on first use. This folder is a local package
with the same name and version (see package.json and .piopm), so builds work offline;
the SCons it runs is the one pinned in pyproject.toml (scons==4.11.1).
"""
import sys

try:
    import SCons.Script.Main
except ImportError:  # pragma: no cover - a broken install, say what to do
    sys.stderr.write(
        "tool-scons (qsnnkit offline package): SCons is not importable by "
        f"{sys.executable}; install it with `pip install scons==4.11.1`\n"
    )
    sys.exit(2)

if __name__ == "__main__":
    SCons.Script.Main.main()
