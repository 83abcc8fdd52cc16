#!/bin/sh
# report_chromium.sh — the HTML report end to end in headless Chromium, with
# no network: the page's scripts run without an error (window.onerror writes
# any into the page), it shows the expected run, tables sort and the flame
# graph zooms when clicked, and a screenshot of the timeline's area is not
# blank (the RSS and VMS lines' colours are there). Skipped (77) without
# chromium.
set -u

builddir=$(cd "${top_builddir:-.}" && pwd)
srcdir=$(cd "${top_srcdir:-.}" && pwd)
pikoc="$builddir/pikoc"
browser=$(command -v chromium || command -v chromium-browser) || {
    echo "SKIP: chromium is not installed (scripts/deps.sh installs it)"
    exit 77
}
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-chromium.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work" || exit 1

. "$srcdir/tests/checks.sh"

# A private profile, no background services, every host name unresolvable
# and a dead proxy: the page can only use what it carries.
chrome() {
    timeout 60 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$work/profile" --disable-background-networking --disable-sync \
        --disable-component-update --disable-extensions --host-resolver-rules='MAP * ~NOTFOUND' \
        --proxy-server='127.0.0.1:9' --force-device-scale-factor=1 --hide-scrollbars \
        --window-size=1280,1600 "$@" 2>>"$work/chrome.err"
}

"$pikoc" run -q -- "$builddir/tests/cli_grow" 3 >/dev/null
"$pikoc" run -q -- "$builddir/tests/cli_grow" 2 >/dev/null
"$pikoc" report --vs 1 -o report.html
check_equal "report written" "$?" 0

chrome --dump-dom "file://$work/report.html" >dom.html
check_equal "the page's scripts ran to the end" "$(grep -c '<html lang="en"[^>]*data-ready="true"' dom.html)" 1
check_equal "no script error" "$(grep -c '<html[^>]*data-errors=' dom.html) $(grep -o '<pre id="errors">[^<]*</pre>' dom.html)" \
    '0 <pre id="errors"></pre>'
check_equal "the expected run" "$(grep -o '<span id="run-id">[0-9]*</span>' dom.html)" '<span id="run-id">2</span>'
check_equal "the comparison with run 1" "$(grep -o '<h2>Compared with run [0-9]*</h2>' dom.html)" \
    "<h2>Compared with run 1</h2>"
check_equal "the time flame graph's zoom script ran" \
    "$(grep -o '<svg[^>]*id="flame-time"[^>]*>' dom.html | grep -c 'data-zoom="ready"')" 1

# Sorting and zooming, clicked by a page that holds the report in a frame
# (file pages may read each other only with --allow-file-access-from-files).
cat >harness.html <<'HTML'
<!DOCTYPE html>
<html><body>
<pre id="result">not loaded</pre>
<iframe id="report" src="report.html" width="1280" height="1600"></iframe>
<script>
document.getElementById('report').onload = function () {
  var page = this.contentDocument, lines = [];
  function cells(table, i) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return row.cells[i].textContent;
    }).join(',');
  }
  try {
    var table = page.querySelector('#functions table'), heads = table.querySelectorAll('th');
    heads[0].click();
    lines.push('function, first click: ' + cells(table, 0));
    heads[0].click();
    lines.push('function, second click: ' + cells(table, 0));
    heads[1].click();
    lines.push('calls: ' + cells(table, 1));
    var frames = page.getElementById('flame-time').querySelectorAll('g.frame');
    function frame(name) {
      return Array.prototype.filter.call(frames, function (g) {
        return g.getAttribute('data-n') === name;
      })[0];
    }
    frame('grow').dispatchEvent(new MouseEvent('click', {bubbles: true}));
    var shown = Array.prototype.filter.call(frames, function (g) {
      return g.style.display !== 'none';
    });
    lines.push('zoomed into grow: ' + shown.map(function (g) {
      var rect = g.querySelector('rect');
      return g.getAttribute('data-n') + ' ' + rect.getAttribute('x') + '+' + rect.getAttribute('width');
    }).join(', '));
    frame('all').dispatchEvent(new MouseEvent('click', {bubbles: true}));
    var grow = frame('grow');
    lines.push('zoomed out: ' + (grow.querySelector('rect').getAttribute('width') ===
      grow.getAttribute('data-w') ? 'as drawn' : 'moved'));
  } catch (e) {
    lines.push('error: ' + e);
  }
  document.getElementById('result').textContent = lines.join('\n');
};
</script>
</body></html>
HTML
chrome --allow-file-access-from-files --dump-dom "file://$work/harness.html" >clicked.html
check_equal "sorting and zooming by clicks" "$(sed -n '/<pre id="result">/,/<\/pre>/p' clicked.html)" \
    '<pre id="result">function, first click: shrink,main,grow
function, second click: grow,main,shrink
calls: 2,2,1
zoomed into grow: all 10+1080, main 10+1080, grow 10+1080
zoomed out: as drawn</pre>'

box=$(sed -n 's/.*data-plot-box="\([0-9,-]*\)".*/\1/p' dom.html | head -1)
set -- $(echo "$box" | tr , ' ')
if [ $# -eq 4 ] && [ "$3" -gt 100 ] && [ "$4" -gt 100 ]; then
    ok "the timeline is laid out ($box)"
    chrome --screenshot="$work/shot.png" "file://$work/report.html" >/dev/null
    # RSS and VMS are always drawn; the live heap needs jemalloc's counters.
    python3 "$srcdir/tests/png_colours.py" shot.png "$@" '#d62728' '#1f77b4' >colours.txt
    colours=$(head -1 colours.txt)
    if [ "${colours:-0}" -ge 8 ]; then ok "the timeline is not blank ($colours colours)"; else
        not_ok "the timeline is blank ($colours colours)"; fi
    check_equal "the RSS and VMS lines are in the screenshot" "$(tail -n +2 colours.txt | tr '\n' ' ')" \
        "#d62728 yes #1f77b4 yes "
else
    not_ok "the timeline's box: '$box'"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || cat "$work/chrome.err"
[ "$failed" -eq 0 ]
