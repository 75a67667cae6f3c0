"""Every key of a module's settings table, with its default, read from the
C sources (the truth), for tests that check the README and man page list
them all."""
import os
import re

from harness import SRCDIR

_STRING = r'(NULL|"(?:[^"\\]|\\.)*")'
# { "key", POSTERN_SET_X, S(field), default, ... } and its variants
_ROW = re.compile(r'\{\s*"(\w+)",\s*POSTERN_SET_\w+,\s*\w+\([^()]*\),\s*' + _STRING)
# smtp's SET("key", POSTERN_SET_X, field, default, ...) and SET_RANGE(...)
_SET = re.compile(r'\bSET(?:_RANGE)?\("(\w+)",\s*POSTERN_SET_\w+,\s*\w+,\s*' + _STRING)
AUTH_SETTINGS_H = os.path.join("include", "postern", "auth_settings.h")


def _read(path):
    with open(os.path.join(SRCDIR, path)) as f:
        return f.read().replace("\\\n", " ")


def _default(text):
    if text == "NULL":
        return None
    return text[1:-1].replace('\\"', '"')


def setting_defaults(*sources):
    """[(key, default text or None)] of the tables in these source files,
    with the shared auth rows where a table lists them."""
    rows = []
    for path in sources:
        source = _read(path)
        found = _ROW.findall(source) + _SET.findall(source)
        if "POSTERN_AUTH_SETTING_DEFS(" in source:
            found += _ROW.findall(_read(AUTH_SETTINGS_H).split("#define POSTERN_AUTH_SETTING_DEFS")[1])
        rows += [(key, _default(default)) for key, default in found]
    return rows


def undocumented(settings, readme_path, man_path):
    """What the README's tables and the man page's .TP entries miss: a key,
    or its default (quotes around a string default are optional)."""
    readme = _read(readme_path)
    man = _read(man_path).replace("\\-", "-").replace("\\fB", "").replace("\\fR", "") \
        .replace("\\fI", "").replace("\\(dq", '"').replace('" "', " ")
    entries = man.split(".TP")
    problems = []
    for key, default in settings:
        rows = [line for line in readme.splitlines()
                if line.startswith("|") and f"`{key}`" in line]
        in_man = [e for e in entries if re.search(rf"(^|\s|\"){key}\b", e.lstrip().split("\n")[0])]
        if not rows:
            problems.append(f"README: no row for {key}")
        if not in_man:
            problems.append(f"man page: no entry for {key}")
        if default is None:
            continue
        forms = {default, default.strip('"')}
        if rows and not any(f"`{form}`" in row for row in rows for form in forms):
            problems.append(f"README: {key}: default {default} not in {rows}")
        bare = re.escape(default.strip('"'))
        if in_man and not any(re.search(rf'default:?[\s"]+{bare}', e) for e in in_man):
            problems.append(f"man page: {key}: default {default} not in its entry")
    return problems


def assert_module_documented(test, module, sources, minimum):
    """Check that modules/MODULE's README.md and postern-MODULE.8 document
    every key of the tables in sources (at least minimum keys)."""
    settings = setting_defaults(*sources)
    test.assertGreater(len(settings), minimum)
    test.assertEqual(undocumented(settings, os.path.join("modules", module, "README.md"),
                                  os.path.join("modules", module, f"postern-{module}.8")), [])
