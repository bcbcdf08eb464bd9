"""debdiff rendered in the platform's markup, and diffoscope's filter, on fixed inputs (unit tests)."""

from __future__ import annotations

from typing import Any

from janitor_differ.debdiff import render_html, render_markdown
from janitor_differ.diffoscope import filter_boring

DEBDIFF = """[The following lists of changes regard files as different if they have
different names, permissions or owners.]

Files in second .changes but not in first
-----------------------------------------
-rw-r--r--  root/root   /usr/share/doc/<script>alert(1)</script>_x*.txt

Control files of package foo: lines which differ (wdiff format)
---------------------------------------------------------------
Description: [-old-] {+new <b>+}
 a continuation line
Homepage: [-http://a.example-] {+https://a.example+}

No differences were encountered between the control files of package libjan1
"""


def test_html_has_the_platforms_shape_and_escapes_everything() -> None:
    page = render_html(DEBDIFF)
    assert page.splitlines() == [
        "<p>",
        "[The following lists of changes regard files as different if they have",
        "different names, permissions or owners.]",
        "</p>",
        "<h4>Files in second .changes but not in first</h4>",
        "<pre>",
        "-rw-r--r--  root/root   /usr/share/doc/&lt;script&gt;alert(1)&lt;/script&gt;_x*.txt",
        "</pre>",
        "<h4>Control files of package foo: lines which differ (wdiff format)</h4>",
        "<ul>",
        '<li><pre>Description: <span style="color:red;font-weight:bold">old</span> '
        '<span style="color:green;font-weight:bold">new &lt;b&gt;</span>',
        " a continuation line</pre></li>",
        '<li><pre>Homepage: <span style="color:red;font-weight:bold">http://a.example</span> '
        '<span style="color:green;font-weight:bold">https://a.example</span></pre></li>',
        "</ul>",
        "<p>",
        "No differences were encountered between the control files of package <b>libjan1</b>",
        "</p>",
    ]


def test_markdown_has_the_platforms_shape() -> None:
    md = render_markdown(DEBDIFF)
    assert md.splitlines() == [
        "[The following lists of changes regard files as different if they have",
        "different names, permissions or owners.]",
        "### Files in second .changes but not in first",
        "    -rw-r--r--  root/root   /usr/share/doc/<script>alert(1)</script>_x*.txt",
        "### Control files of package foo: lines which differ (wdiff format)",
        "* Description: [-old-] {+new \\<b\\>+}",
        "*  a continuation line",
        "* Homepage: [-http&#8203;://a.example-] {+https&#8203;://a.example+}",
        "",
        "No differences were encountered between the control files of package **libjan1**",
    ]


def test_diffoscope_filter_keeps_labels_and_drops_comment_only_entries() -> None:
    old, new = "1.0-1~jan+unchanged1", "1.0-2~jan+lint1"
    diff: dict[str, Any] = {
        "source1": f"hello version {old} (unchanged)",
        "source2": f"hello version {new} (lintian-fixes)",
        "unified_diff": None,
        "details": [
            {
                "source1": f"hello_{old}_amd64.deb",
                "source2": f"hello_{new}_amd64.deb",
                "unified_diff": None,
                "details": [
                    {"source1": "./md5sums", "source2": "./md5sums", "comments": ["Files in package differ"]},
                    {
                        "source1": "./control",
                        "source2": "./control",
                        "unified_diff": (
                            f"@@ -1,2 +1,2 @@\n-Version: {old}\n+Version: {new}\n-Section: misc\n+Section: x\n"
                        ),
                    },
                    {
                        "source1": "./changelog",
                        "source2": "./changelog",
                        "unified_diff": f"@@ -1 +1 @@\n-hello ({old})\n+hello ({new})\n",
                    },
                ],
            },
            {"source1": "Version", "source2": "Version", "unified_diff": "@@ -1 +1 @@\n-a\n+b\n"},
            {
                "source1": "/dev/null",
                "source2": f"hello-doc_{new}_all.deb",
                "comments": ["Package only in the new run"],
            },
        ],
    }
    filtered = filter_boring(diff, old, new)
    assert filtered["source1"] == diff["source1"] and filtered["source2"] == diff["source2"]
    deb, only_new = filtered["details"]
    assert deb["source1"] == "hello_1.0-2_amd64.deb" and only_new["source2"] == "hello-doc_1.0-2_all.deb"
    (control,) = deb["details"]  # md5sums (comments only) and the version-only changelog are gone
    assert control["source1"] == "./control" and "-Section: misc" in control["unified_diff"]
    assert "Version" not in control["unified_diff"].replace(" Version: 1.0-2", "")
    assert "details" not in control
    assert diff["details"][0]["details"][0]["source1"] == "./md5sums"  # the input is left alone
