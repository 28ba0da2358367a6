/*
 * html_style.c - the stylesheet and the table script of the HTML reports
 * (html_style.h).
 */
#include "base/html_style.h"

static const char css[] =
"*{box-sizing:border-box}\n"
"body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}\n"
"header{background:#1d2a44;color:#fff;padding:18px 24px}header h1{margin:0 0 4px;font-size:22px}\n"
"header p{margin:0;opacity:.9}header nav{margin-top:8px}header nav a{color:#cfe0ff;margin-right:16px}\n"
"header p.alert{opacity:1;margin-top:10px;padding:8px 12px;background:#c62828;border-radius:4px;font-weight:600}\n"
"main{padding:16px 24px;max-width:1320px}\n"
"h2{font-size:17px;margin:26px 0 10px}code{font:12px ui-monospace,Consolas,monospace;overflow-wrap:anywhere}\n"
"td,th,li,dd,summary{overflow-wrap:anywhere}\n"
".cards{display:flex;flex-wrap:wrap;gap:10px}\n"
".card{font:inherit;color:inherit;text-align:left;text-decoration:none;background:#fff;border:0;border-radius:8px;padding:10px 16px;min-width:118px;box-shadow:0 1px 2px rgba(0,0,0,.12);border-top:4px solid #999;cursor:pointer}\n"
".card b{display:block;font-size:26px}.card span{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#555}\n"
".card[aria-pressed=true]{outline:3px solid #1d2a44;outline-offset:1px}\n"
".s-needs-migration,.s-fail{border-color:#c62828}.s-at-risk{border-color:#ef8f00}.s-migrated,.s-pass{border-color:#2e7d32}.s-unaffected{border-color:#1565c0}.s-broken{border-color:#6a1b9a}.s-action{border-color:#1d2a44}\n"
".bg-needs-migration,.bg-fail{background:#c62828}.bg-at-risk{background:#ef8f00}.bg-migrated,.bg-pass{background:#2e7d32}.bg-unaffected{background:#1565c0}.bg-broken{background:#6a1b9a}.bg-skip{background:#8a94a3}\n"
".chart{background:#fff;border-radius:8px;padding:12px 18px;box-shadow:0 1px 2px rgba(0,0,0,.12)}\n"
".bar{display:flex;align-items:center;margin:4px 0}.bar .label{width:24%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding-right:8px}\n"
".bar .track{flex:1;display:flex;height:18px;background:#eceff3;border-radius:3px;overflow:hidden}.bar .track i{display:block;height:100%}\n"
".bar .n{width:56px;text-align:right;color:#555}.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}\n"
"table{border-collapse:collapse;width:100%;table-layout:fixed;background:#fff}\n"
"th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}\n"
"th{background:#eef1f5}table.sortable th{cursor:pointer;user-select:none}th.sorted-asc::after{content:' \\25B2'}th.sorted-desc::after{content:' \\25BC'}\n"
".pill{display:inline-block;color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;white-space:nowrap}\n"
"ul.f{margin:0;padding-left:16px}ul.f li{margin:2px 0}.sev-error a{color:#c62828;font-weight:600}.sev-warning a{color:#a05a00;font-weight:600}.sev-info a{color:#555;font-weight:600}\n"
".controls{display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin:0 0 8px}.controls input,.controls select{font:inherit;padding:4px 8px}\n"
"#shown{color:#444}.more,.printnote{color:#555;font-style:italic}\n"
"details.g{background:#fff;border-radius:6px;margin:6px 0;box-shadow:0 1px 2px rgba(0,0,0,.12)}\n"
"details.g>summary{cursor:pointer;padding:8px 12px}details.g>summary>*{margin-right:10px}\n"
".gm{font-weight:600}.gn{color:#555}.gb{padding:0 12px 10px}.gb>ul.f{margin:0 0 8px}\n"
"col.c-sched{width:14%}col.c-job{width:21%}col.c-st{width:12%}col.c-mail{width:19%}col.c-find{width:34%}\n"
"dl dt{font-weight:600;margin-top:10px}dl dd{margin:2px 0 0 16px}p.lead{font-size:16px;margin:10px 0 14px}\n"
"tr.fail td.failed{background:#fce8e6;font-weight:600}tr.fail td.failed .pill{outline:2px solid #c62828}\n"
"th.step{font-size:12px;text-align:center}td.step{text-align:center}td.step small{display:block;color:#555}.note{color:#2e5e2e}td>p{margin:0 0 6px}\n"
"@media print{\n"
" body{background:#fff;font-size:11px}\n"
" header{background:none;color:#000;padding:0 0 6px;border-bottom:2px solid #000}header p.alert{color:#fff}\n"
" header nav,.controls,.more,.noprint{display:none}\n"
" main{padding:0;max-width:none}th,td{padding:4px 5px}th.step{font-size:9px}td.step .pill{padding:1px 4px}.pill{font-size:10px;white-space:normal}\n"
" .card{box-shadow:none;border:1px solid #bbb;border-top-width:4px;min-width:0}\n"
" .chart,details.g,table{box-shadow:none;border:1px solid #ccc}\n"
" details::details-content{content-visibility:visible;display:block}\n"
" #groups.lines details:not([open])::details-content{display:none}\n"
" details.g>summary{list-style:none;break-after:avoid}\n"
" tr,li,.card,.bar,summary,dt,dd{break-inside:avoid}h2{break-after:avoid}thead{display:table-header-group}\n"
" .pill,.card,.bar i,header p.alert,td.failed{-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
" a{color:inherit;text-decoration:none}\n"
"}\n";

/* Sorting for every table.sortable (a click on a header); for a page
 * whose rows are all in one table.filtered, the status cards, a status
 * select #st and a text box #q filter them and #shown counts them. */
static const char table_js[] =
"(function(){\n"
"function key(r,i){var c=r.cells[i];return c?(c.getAttribute('data-k')||c.textContent):'';}\n"
"document.addEventListener('click',function(e){\n"
" var th=e.target.closest&&e.target.closest('table.sortable thead th');if(!th)return;\n"
" var t=th.closest('table'),tb=t.tBodies[0],i=th.cellIndex,asc=!th.classList.contains('sorted-asc');\n"
" Array.prototype.forEach.call(th.parentNode.cells,function(c){c.classList.remove('sorted-asc','sorted-desc');});\n"
" th.classList.add(asc?'sorted-asc':'sorted-desc');\n"
" var rows=Array.prototype.slice.call(tb.rows);\n"
" rows.sort(function(a,b){var x=key(a,i),y=key(b,i),nx=parseFloat(x),ny=parseFloat(y);\n"
"  var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});\n"
" rows.forEach(function(r){tb.appendChild(r);});});\n"
"var t=document.querySelector('table.filtered');if(!t)return;\n"
"var q=document.getElementById('q'),st=document.getElementById('st'),out=document.getElementById('shown');\n"
"var cards=document.querySelectorAll('.card[data-f]'),rows=t.tBodies[0].rows;\n"
"function apply(){var s=q.value.trim().toLowerCase(),v=st.value,n=0;\n"
" Array.prototype.forEach.call(rows,function(r){\n"
"  var ok=(!v||r.getAttribute('data-status')===v)&&(!s||r.textContent.toLowerCase().indexOf(s)>=0);\n"
"  r.hidden=!ok;n+=ok?1:0;});\n"
" Array.prototype.forEach.call(cards,function(c){c.setAttribute('aria-pressed',String(!!v&&c.getAttribute('data-f')===v));});\n"
" out.textContent='Showing '+n+' of '+rows.length;}\n"
"Array.prototype.forEach.call(cards,function(c){c.addEventListener('click',function(){\n"
" var f=c.getAttribute('data-f');st.value=st.value===f?'':f;apply();});});\n"
"q.addEventListener('input',apply);st.addEventListener('change',apply);\n"
"var m=/[#&]status=([a-z-]+)/.exec(location.hash);if(m)st.value=m[1];\n"
"m=/[#&]q=([^&]*)/.exec(location.hash);if(m)q.value=decodeURIComponent(m[1]);\n"
"apply();\n"
"})();\n";

const char *html_style_css(void)
{
	return css;
}

const char *html_style_table_js(void)
{
	return table_js;
}
