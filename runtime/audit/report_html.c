/*
 * report_html.c - the audit as one self-contained HTML page that stays
 * usable at fleet scale and on paper.
 *
 * The page leads with the work, grouped by INI file (the unit that
 * migrates), each group's jobs folded inside a <details>.  Only the first
 * groups are written as HTML; every group is also in one embedded JSON
 * block (a string table and compact rows of numbers), from which a small
 * script renders the rest in chunks as the reader scrolls, filters them
 * (summary cards, status, text) and fills a group when it is opened.
 * Without JavaScript the page still says what matters: the summary, the
 * counts and the first groups.  100,000 jobs make a page of a few MB
 * (a table row per job made 117 MB that Chromium could not lay out).
 *
 * The stylesheet and the table script are shared with mailshift-verify's
 * report (base/html_style.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "audit/report_int.h"
#include "base/buf.h"
#include "base/escape.h"
#include "base/html_style.h"
#include "base/mem.h"

#define FIRST_GROUPS 25     /* groups written as HTML (the no-script view) */
#define FIRST_ROWS 400      /* job rows among them, at most */
#define OPEN_UP_TO 100      /* a fleet with this few jobs: every group open */
#define CHART_BARS 30       /* bars per chart; the rest are counted */
#define PRINT_UP_TO 5000    /* printing opens every group up to this many
			     * jobs shown; beyond, it prints the groups'
			     * lines (and the groups the reader opened) */
#define STR_(x) #x
#define STR(x) STR_(x)

/* The audit page's rows: groups from the embedded JSON (see json_group()
 * for the shape), rendered in chunks while the end of the list is within
 * three screens, filled when opened, all at once before printing.  The
 * markup is the one html_group() and html_job() write.  It starts after
 * the page is shown (DOMContentLoaded does not wait for the rows). */
static const char audit_js[] =
"setTimeout(function(){\n"
"var el=document.getElementById('audit-data');if(!el)return;\n"
"var D=JSON.parse(el.textContent),S=D.s,ST=D.st,SV=D.sev,G=D.g;\n"
"var box=document.getElementById('groups'),out=document.getElementById('shown'),more=document.getElementById('more');\n"
"var q=document.getElementById('q'),st=document.getElementById('st'),cards=document.querySelectorAll('.card[data-f]');\n"
"var CH=40,ROWS=400,list=[],k=0,f='',s='',busy=false,printing=false,njobs=0,total=0,openAll=false;\n"
"G.forEach(function(g){total+=g[4].length;});\n"
"function e(i){return i<0?'':S[i].replace(/[&<>\"']/g,function(c){return '&#'+c.charCodeAt(0)+';';});}\n"
"function t(i){return i<0?'':S[i];}\n"
"function gt(g){return g.t||(g.t=(t(g[0])+' '+t(g[1])).toLowerCase());}\n"
"function jt(j){return j.t||(j.t=(t(j[0])+' '+t(j[1])+' '+t(j[5])+' '+t(j[7])+' '+\n"
" j[9].map(function(x){return t(x[0])+' '+t(x[2]);}).join(' ')).toLowerCase());}\n"
"function jok(g,j){if(f==='action'?!j[8]:(f&&f!=='orphan'&&ST[j[2]]!==f))return false;\n"
" return !s||gt(g).indexOf(s)>=0||jt(j).indexOf(s)>=0;}\n"
"function gok(g){if(!g[4].length)return (!f||f==='orphan')&&(!s||gt(g).indexOf(s)>=0);\n"
" if(f==='orphan')return false;for(var i=0;i<g[4].length;i++)if(jok(g,g[4][i]))return true;return false;}\n"
"function fnd(fs){if(!fs.length)return '&mdash;';return '<ul class=\"f\">'+fs.map(function(x){\n"
" return '<li class=\"sev-'+SV[x[1]]+'\"><a href=\"#f-'+e(x[0])+'\">'+e(x[0])+'</a> '+e(x[2])+'</li>';}).join('')+'</ul>';}\n"
"function pills(g){var c=[0,0,0,0,0],h='';g[4].forEach(function(j){c[j[2]]++;});\n"
" for(var i=0;i<ST.length;i++)if(c[i])h+='<span class=\"pill bg-'+ST[i]+'\">'+c[i]+' '+ST[i]+'</span>';return h;}\n"
"function cnt(g){var n=g[4].length;if(!n)return 'no job uses it';\n"
" return n+' job'+(n>1?'s':'')+(g[5]?', '+g[5]+' need'+(g[5]>1?'':'s')+' action':'');}\n"
"function ghead(g,i){return '<details class=\"g\" data-g=\"'+i+'\"'+(openAll?' open':'')+'><summary><span class=\"gs\">'+pills(g)+\n"
" '</span><span class=\"gm\">'+e(g[0])+'</span><code class=\"gp\">'+(g[1]<0?'(INI file not found)':e(g[1]))+\n"
" '</code><span class=\"gn\">'+cnt(g)+'</span></summary><div class=\"gb\"></div></details>';}\n"
"function row(j){return '<tr data-status=\"'+ST[j[2]]+'\"><td>'+e(j[0])+'</td><td>'+e(j[1])+'<br><small>'+e(j[3])+\n"
" (j[4]?':'+j[4]:'')+'</small></td><td data-k=\"'+j[2]+'\"><span class=\"pill bg-'+ST[j[2]]+'\">'+ST[j[2]]+'</span></td><td>'+\n"
" (j[5]<0?'':e(j[5])+'<br><small>'+e(j[6])+'</small>')+'</td><td>'+fnd(j[9])+\n"
" (j[7]<0?'':'<small>command: <code>'+e(j[7])+'</code></small>')+'</td></tr>';}\n"
"function fill(d,sync){var g=G[+d.getAttribute('data-g')],b=d.querySelector('.gb'),rs=g[4].filter(function(j){return jok(g,j);}),i=0;\n"
" d.setAttribute('data-done','');b.innerHTML=(g[3].length?fnd(g[3]):'')+(rs.length?D.thead+'</tbody></table>':'');\n"
" var tb=b.querySelector('tbody');\n"
" (function chunk(){var h='',end=sync?rs.length:Math.min(i+ROWS,rs.length);for(;i<end;i++)h+=row(rs[i]);\n"
"  if(tb)tb.insertAdjacentHTML('beforeend',h);if(i<rs.length)requestAnimationFrame(chunk);})();}\n"
"function near(){return box.getBoundingClientRect().bottom<innerHeight*3;}\n"
"function show(){out.textContent='Showing '+njobs+' of '+total+' jobs in '+list.length+' of '+G.length+' INI files'+\n"
" (k<list.length?' ('+(list.length-k)+' more below, listed as you scroll)':'');}\n"
"function pump(){busy=false;var end=printing?list.length:Math.min(k+CH,list.length),h='',first=k;\n"
" for(;k<end;k++)h+=ghead(G[list[k]],list[k]);box.insertAdjacentHTML('beforeend',h);\n"
" if(openAll||(printing&&njobs<=" STR(PRINT_UP_TO) "))Array.prototype.slice.call(box.children,box.children.length-(k-first)).forEach(function(d){fill(d,printing);});\n"
" show();if(k<list.length&&near()){busy=true;requestAnimationFrame(pump);}}\n"
"addEventListener('scroll',function(){if(!busy&&k<list.length&&near()){busy=true;requestAnimationFrame(pump);}},{passive:true});\n"
"box.addEventListener('toggle',function(ev){var d=ev.target;if(d.open&&!d.hasAttribute('data-done'))fill(d,printing);},true);\n"
"function apply(){s=q.value.trim().toLowerCase();f=st.value;list=[];njobs=0;\n"
" G.forEach(function(g,i){if(!gok(g))return;list.push(i);g[4].forEach(function(j){if(jok(g,j))njobs++;});});\n"
" Array.prototype.forEach.call(cards,function(c){c.setAttribute('aria-pressed',String(!!f&&c.getAttribute('data-f')===f));});\n"
" openAll=njobs<=" STR(OPEN_UP_TO) ";box.innerHTML='';k=0;pump();}\n"
"Array.prototype.forEach.call(cards,function(c){c.addEventListener('click',function(){\n"
" var v=c.getAttribute('data-f');st.value=st.value===v?'':v;apply();});});\n"
"q.addEventListener('input',apply);st.addEventListener('change',apply);\n"
"addEventListener('beforeprint',function(){printing=true;if(k<list.length)pump();\n"
" if(njobs>" STR(PRINT_UP_TO) "){var p=document.createElement('p');p.id='printnote';p.className='printnote';\n"
"  p.textContent='Printed without the jobs of each INI file ('+njobs+' jobs would take thousands of pages): '+\n"
"   'open a group before printing to include its jobs, filter the list, or use --format csv.';\n"
"  box.parentNode.insertBefore(p,box);box.classList.add('lines');return;}\n"
" Array.prototype.forEach.call(box.children,function(d){if(!d.hasAttribute('data-done'))fill(d,true);d.open=true;});});\n"
"addEventListener('afterprint',function(){printing=false;box.classList.remove('lines');\n"
" var p=document.getElementById('printnote');if(p)p.remove();});\n"
"if(more)more.hidden=true;\n"
"var m=/[#&]status=([a-z-]+)/.exec(location.hash);if(m)st.value=m[1];\n"
"m=/[#&]q=([^&]*)/.exec(location.hash);if(m)q.value=decodeURIComponent(m[1]);\n"
"if(q.value||st.value){apply();return;}\n"
"for(var i=0;i<G.length;i++)list.push(i);njobs=total;openAll=total<=" STR(OPEN_UP_TO) ";k=Math.min(D.n0,G.length);show();\n"
"if(k<list.length&&near()){busy=true;requestAnimationFrame(pump);}\n"
"},0);\n";

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* ---- a string table: each distinct string of the rows once ------------ */

struct strtab {
	char **v;                 /* owned copies, by id */
	size_t n, cap;
	size_t *slot;             /* open addressing: id + 1, 0 when empty */
	size_t nslot;             /* a power of two */
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int strtab_rehash(struct strtab *t, struct ms_err *err)
{
	size_t ns = t->nslot ? t->nslot * 2 : 1024, i;
	size_t *slot = calloc(ns, sizeof(*slot));

	if (!slot)
		return err_nomem(err);
	for (i = 0; i < t->n; i++) {
		size_t j = (size_t)str_hash(t->v[i]) & (ns - 1);
		while (slot[j])
			j = (j + 1) & (ns - 1);
		slot[j] = i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = ns;
	return 0;
}

/* The id of s (added when new); -1 for NULL, -2 on error. */
static long strtab_id(struct strtab *t, const char *s, struct ms_err *err)
{
	size_t j;

	if (!s)
		return -1;
	if ((t->n + 1) * 2 > t->nslot && strtab_rehash(t, err) < 0)
		return -2;
	for (j = (size_t)str_hash(s) & (t->nslot - 1); t->slot[j];
	     j = (j + 1) & (t->nslot - 1))
		if (strcmp(t->v[t->slot[j] - 1], s) == 0)
			return (long)(t->slot[j] - 1);
	if (MEM_GROW(t->v, t->cap, t->n + 1, err) < 0)
		return -2;
	if (!(t->v[t->n] = strdup(s)))
		return err_nomem(err) - 1;
	t->slot[j] = ++t->n;
	return (long)(t->n - 1);
}

static void strtab_release(struct strtab *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	free(t->slot);
}

/* ---- groups: the jobs of each INI file -------------------------------- */

struct hgroup {
	const char *machine, *path;   /* path: Windows path, NULL when unknown */
	const struct audit_ini *ini;  /* NULL when the INI was not collected */
	size_t first, n;              /* its jobs: order[first .. first + n) */
	size_t action;                /* of them, jobs needing action */
};

struct page {
	const struct audit *a;
	const struct report_opts *o;
	struct buf *b;
	struct sink *k;
	unsigned char *act;           /* per job: analysis_needs_action() */
	size_t *order;                /* job indices, grouped */
	struct hgroup *g;
	size_t ng, n_action;
	struct strtab st;
	struct buf tmp;
	int chart_by_machine;         /* html_chart()'s sort */
};

/* Jobs of one INI file are together: the collected file when found, else
 * machine and the path the job names (Windows: any case). */
static int group_cmp(const struct job_verdict *x, const struct job_verdict *y)
{
	int c;

	if (x->ini_file || y->ini_file) {
		if (!x->ini_file || !y->ini_file)
			return x->ini_file ? -1 : 1;
		return strcmp(x->ini_file, y->ini_file);
	}
	if ((c = strcasecmp(nz(x->machine), nz(y->machine))))
		return c;
	return strcasecmp(nz(x->ini), nz(y->ini));
}

/* Within a group: jobs needing action first, then audit order. */
static int order_cmp(const void *x, const void *y, void *ctx)
{
	const struct page *p = ctx;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = group_cmp(&p->a->jobs[i], &p->a->jobs[j]);

	if (c)
		return c;
	if (p->act[i] != p->act[j])
		return p->act[i] ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* The work first (groups with jobs needing action), then the other
 * groups, then INI files no job uses; by machine and path in each. */
static int hgroup_cmp(const void *x, const void *y)
{
	const struct hgroup *g = x, *h = y;
	int rg = g->action ? 0 : g->n ? 1 : 2, rh = h->action ? 0 : h->n ? 1 : 2, c;

	if (rg != rh)
		return rg - rh;
	if ((c = strcasecmp(nz(g->machine), nz(h->machine))))
		return c;
	return strcasecmp(nz(g->path), nz(h->path));
}

static int ini_file_cmp(const void *x, const void *y)
{
	return strcmp((*(const struct audit_ini *const *)x)->file,
		      (*(const struct audit_ini *const *)y)->file);
}

static const struct audit_ini *ini_find(const struct audit_ini **by_file, size_t n,
					const char *file)
{
	struct audit_ini key = { .file = (char *)file }, *kp = &key;
	const struct audit_ini **hit;

	hit = bsearch(&kp, by_file, n, sizeof(*by_file), ini_file_cmp);
	return hit ? *hit : NULL;
}

/* One group per INI file with jobs, one per collected INI file without. */
static int build_groups(struct page *p, struct ms_err *err)
{
	const struct audit *a = p->a;
	const struct audit_ini **by_file = NULL;
	unsigned char *used = NULL;
	size_t i, j, cap = 0;
	int rc = -1;

	p->act = calloc(a->n_jobs + 1, 1);
	p->order = calloc(a->n_jobs + 1, sizeof(*p->order));
	by_file = calloc(a->n_inis + 1, sizeof(*by_file));
	used = calloc(a->n_inis + 1, 1);
	if (!p->act || !p->order || !by_file || !used) {
		err_nomem(err);
		goto out;
	}
	for (i = 0; i < a->n_jobs; i++) {
		p->order[i] = i;
		p->act[i] = analysis_needs_action(&a->jobs[i]) != 0;
		p->n_action += p->act[i];
	}
	qsort_r(p->order, a->n_jobs, sizeof(*p->order), order_cmp, p);
	for (i = 0; i < a->n_inis; i++)
		by_file[i] = &a->inis[i];
	qsort(by_file, a->n_inis, sizeof(*by_file), ini_file_cmp);
	for (i = 0; i < a->n_jobs; i = j) {
		const struct job_verdict *v = &a->jobs[p->order[i]];
		struct hgroup *g;

		if (MEM_GROW(p->g, cap, p->ng + 1, err) < 0)
			goto out;
		g = &p->g[p->ng++];
		memset(g, 0, sizeof(*g));
		g->machine = v->machine;
		g->path = v->ini;
		g->first = i;
		if (v->ini_file && (g->ini = ini_find(by_file, a->n_inis, v->ini_file))) {
			used[g->ini - a->inis] = 1;
			g->machine = g->ini->machine;
			g->path = g->ini->windows_path;
		}
		for (j = i; j < a->n_jobs &&
		     group_cmp(v, &a->jobs[p->order[j]]) == 0; j++)
			g->action += p->act[p->order[j]];
		g->n = j - i;
	}
	for (i = 0; i < a->n_inis; i++) {
		if (used[i])
			continue;
		if (MEM_GROW(p->g, cap, p->ng + 1, err) < 0)
			goto out;
		memset(&p->g[p->ng], 0, sizeof(p->g[0]));
		p->g[p->ng].machine = a->inis[i].machine;
		p->g[p->ng].path = a->inis[i].windows_path;
		p->g[p->ng++].ini = &a->inis[i];
	}
	if (p->ng)
		qsort(p->g, p->ng, sizeof(*p->g), hgroup_cmp);
	rc = 0;
out:
	free(by_file);
	free(used);
	return rc;
}

/* ---- HTML pieces (the script writes the same markup) ------------------ */

#define T(x) do { if (buf_appends(b, (x), err) < 0) return -1; } while (0)
#define E(x) do { if (escape_html(b, (x), err) < 0) return -1; } while (0)
#define F(...) do { if (buf_appendf(b, err, __VA_ARGS__) < 0) return -1; } while (0)

static const char jobs_thead[] =
	"<table class=\"jobs sortable\"><colgroup><col class=\"c-sched\"><col class=\"c-job\">"
	"<col class=\"c-st\"><col class=\"c-mail\"><col class=\"c-find\"></colgroup><thead><tr>"
	"<th>Schedule</th><th>Job</th><th>Status</th><th>Mail</th><th>Findings</th></tr>"
	"</thead><tbody>";

static int html_findings(struct buf *b, const struct finding *f, size_t n,
			 struct ms_err *err)
{
	size_t i;

	if (!n)
		return buf_appends(b, "&mdash;", err);
	T("<ul class=\"f\">");
	for (i = 0; i < n; i++) {
		F("<li class=\"sev-%s\"><a href=\"#f-", analysis_severity_name(f[i].severity));
		E(f[i].code);
		T("\">");
		E(f[i].code);
		T("</a> ");
		E(f[i].message);
		T("</li>");
	}
	return buf_appends(b, "</ul>", err);
}

/* "IMAP host:993" and "TLS implicit, auth basic" (empty without a server). */
static int mail_text(struct buf *t, const struct job_verdict *v, int second,
		     struct ms_err *err)
{
	buf_reset(t);
	if (!v->server)
		return buf_append(t, "", 0, err);
	if (!second)
		return buf_appendf(t, err, "%s %s:%d", config_protocol_name(v->protocol),
				   v->server, v->port);
	return buf_appendf(t, err, "TLS %s%s%s%s, auth %s", analysis_tls_name(v->tls),
			   v->tls_verify || v->tls == TLSL_NONE ? "" : " (unverified)",
			   v->tls_mode ? ", tls: " : "", v->tls_mode ? v->tls_mode : "",
			   analysis_auth_name(v->auth));
}

static int html_job(struct page *p, const struct job_verdict *v, struct ms_err *err)
{
	struct buf *b = p->b;
	const char *st = analysis_status_name(v->status);

	F("<tr data-status=\"%s\"><td>", st);
	E(v->schedule);
	T("</td><td>");
	E(v->job);
	T("<br><small>");
	E(v->source);
	if (v->source_line)
		F(":%d", v->source_line);
	F("</small></td><td data-k=\"%d\"><span class=\"pill bg-%s\">%s</span></td><td>",
	  (int)v->status, st, st);
	if (v->server) {
		if (mail_text(&p->tmp, v, 0, err) < 0)
			return -1;
		E(p->tmp.data);
		T("<br><small>");
		if (mail_text(&p->tmp, v, 1, err) < 0)
			return -1;
		E(p->tmp.data);
		T("</small>");
	}
	T("</td><td>");
	if (html_findings(b, v->findings, v->n_findings, err) < 0)
		return -1;
	if (v->command_line) {
		T("<small>command: <code>");
		E(v->command_line);
		T("</code></small>");
	}
	return buf_appends(b, "</td></tr>\n", err);
}

/* One group as HTML: its summary line and, inside, its first `rows` jobs
 * (the script fills a group left incomplete when it is opened). */
static int html_group(struct page *p, size_t gi, int open, size_t rows,
		      struct ms_err *err)
{
	struct buf *b = p->b;
	const struct hgroup *g = &p->g[gi];
	size_t c[STATUS_COUNT] = { 0 }, i;
	int s;

	for (i = 0; i < g->n; i++)
		c[p->a->jobs[p->order[g->first + i]].status]++;
	F("<details class=\"g\" data-g=\"%zu\"%s%s><summary><span class=\"gs\">",
	  gi, rows == g->n ? " data-done=\"\"" : "", open ? " open" : "");
	for (s = 0; s < STATUS_COUNT; s++)
		if (c[s])
			F("<span class=\"pill bg-%s\">%zu %s</span>",
			  analysis_status_name((enum job_status)s), c[s],
			  analysis_status_name((enum job_status)s));
	T("</span><span class=\"gm\">");
	E(g->machine);
	T("</span><code class=\"gp\">");
	E(g->path ? g->path : "(INI file not found)");
	T("</code><span class=\"gn\">");
	if (!g->n)
		T("no job uses it");
	else
		F("%zu job%s", g->n, g->n == 1 ? "" : "s");
	if (g->action)
		F(", %zu need%s action", g->action, g->action == 1 ? "s" : "");
	T("</span></summary><div class=\"gb\">");
	if (g->ini && g->ini->n_findings &&
	    html_findings(b, g->ini->findings, g->ini->n_findings, err) < 0)
		return -1;
	if (g->n) {
		T(jobs_thead);
		for (i = 0; i < rows; i++)
			if (html_job(p, &p->a->jobs[p->order[g->first + i]], err) < 0)
				return -1;
		if (rows < g->n)
			F("<tr><td colspan=\"5\" class=\"more\">%zu more job%s: listed when "
			  "the page's script runs, and in --format csv</td></tr>", g->n - rows,
			  g->n - rows == 1 ? "" : "s");
		T("</tbody></table>");
	}
	return buf_appends(b, "</div></details>\n", err);
}

/* ---- the embedded rows -------------------------------------------------- */

/* A string as its id in the table ("-1" for NULL). */
static int jid(struct page *p, const char *s, struct ms_err *err)
{
	long id = strtab_id(&p->st, s, err);

	if (id < -1)
		return -1;
	return buf_appendf(p->b, err, "%ld", id);
}

static int json_findings(struct page *p, const struct finding *f, size_t n,
			 struct ms_err *err)
{
	struct buf *b = p->b;
	size_t i;

	T("[");
	for (i = 0; i < n; i++) {
		T(i ? ",[" : "[");
		if (jid(p, f[i].code, err) < 0)
			return -1;
		F(",%d,", (int)f[i].severity);
		if (jid(p, f[i].message, err) < 0)
			return -1;
		T("]");
	}
	return buf_appends(b, "]", err);
}

/* [schedule, job, status, source, line, mail, mail detail, command,
 *  needs action, findings [[code, severity, message]...]] (strings as ids) */
static int json_job(struct page *p, size_t ji, struct ms_err *err)
{
	const struct job_verdict *v = &p->a->jobs[ji];
	struct buf *b = p->b;

	T("[");
	if (jid(p, v->schedule, err) < 0 || buf_appends(b, ",", err) < 0 ||
	    jid(p, v->job, err) < 0)
		return -1;
	F(",%d,", (int)v->status);
	if (jid(p, v->source, err) < 0)
		return -1;
	F(",%d,", v->source_line);
	if (v->server) {
		if (mail_text(&p->tmp, v, 0, err) < 0 || jid(p, p->tmp.data, err) < 0 ||
		    mail_text(&p->tmp, v, 1, err) < 0 || buf_appends(b, ",", err) < 0 ||
		    jid(p, p->tmp.data, err) < 0)
			return -1;
	} else {
		T("-1,-1");
	}
	T(",");
	if (jid(p, v->command_line, err) < 0)
		return -1;
	F(",%d,", p->act[ji]);
	if (json_findings(p, v->findings, v->n_findings, err) < 0)
		return -1;
	return buf_appends(b, "]", err);
}

/* {"n0": groups already HTML, "st": status names, "sev": severity names,
 *  "thead": the jobs table's head, "g": [[machine, path, INI findings,
 *  ... see below], ...], "s": the strings}
 * A group: [machine, path, file, INI findings, [jobs], jobs needing action]. */
static int json_data(struct page *p, size_t n0, struct ms_err *err)
{
	struct buf *b = p->b;
	size_t i, j;
	int s;

	F("<script type=\"application/json\" id=\"audit-data\">{\"n0\":%zu,\"st\":[", n0);
	for (s = 0; s < STATUS_COUNT; s++)
		F("%s\"%s\"", s ? "," : "", analysis_status_name((enum job_status)s));
	F("],\"sev\":[\"%s\",\"%s\",\"%s\"],\"thead\":", analysis_severity_name(SEV_ERROR),
	  analysis_severity_name(SEV_WARNING), analysis_severity_name(SEV_INFO));
	if (escape_json(b, jobs_thead, ESC_JSON_SCRIPT, err) < 0)
		return -1;
	T(",\"g\":[");
	for (i = 0; i < p->ng; i++) {
		const struct hgroup *g = &p->g[i];

		T(i ? ",\n[" : "\n[");
		if (jid(p, g->machine, err) < 0 || buf_appends(b, ",", err) < 0 ||
		    jid(p, g->path, err) < 0 || buf_appends(b, ",", err) < 0 ||
		    jid(p, g->ini ? g->ini->file : NULL, err) < 0 ||
		    buf_appends(b, ",", err) < 0 ||
		    json_findings(p, g->ini ? g->ini->findings : NULL,
				  g->ini ? g->ini->n_findings : 0, err) < 0)
			return -1;
		T(",[");
		for (j = 0; j < g->n; j++) {
			if ((j && buf_appends(b, ",", err) < 0) ||
			    json_job(p, p->order[g->first + j], err) < 0 ||
			    report_spill(b, p->k, 0, err) < 0)
				return -1;
		}
		F("],%zu]", g->action);
	}
	T("],\n\"s\":[");
	for (i = 0; i < p->st.n; i++) {
		if ((i && buf_appends(b, (i % 64) ? "," : ",\n", err) < 0) ||
		    escape_json(b, p->st.v[i], ESC_JSON_SCRIPT, err) < 0 ||
		    report_spill(b, p->k, 0, err) < 0)
			return -1;
	}
	return buf_appends(b, "]}</script>\n", err);
}

/* ---- the page ------------------------------------------------------------ */

struct bar {
	const char *key;
	size_t c[STATUS_COUNT], tot, act;
};

static const char *bar_key(const struct audit *a, int by_machine, size_t i)
{
	return by_machine ? a->jobs[i].machine : a->jobs[i].schedule;
}

static int key_cmp(const void *x, const void *y, void *ctx)
{
	const struct page *p = ctx;
	int m = p->chart_by_machine;

	return strcasecmp(nz(bar_key(p->a, m, *(const size_t *)x)),
			  nz(bar_key(p->a, m, *(const size_t *)y)));
}

static int bar_cmp(const void *x, const void *y)
{
	const struct bar *p = x, *q = y;

	if (p->act != q->act)
		return p->act > q->act ? -1 : 1;
	if (p->tot != q->tot)
		return p->tot > q->tot ? -1 : 1;
	return strcasecmp(nz(p->key), nz(q->key));
}

/* One bar per machine (any case: Windows) or schedule, those with the most
 * work first; CHART_BARS at most, the rest counted. */
static int html_chart(struct page *p, int by_machine, struct ms_err *err)
{
	const struct audit *a = p->a;
	struct buf *b = p->b;
	struct bar *bars = calloc(a->n_jobs + 1, sizeof(*bars));
	size_t *idx = calloc(a->n_jobs + 1, sizeof(*idx)), nb = 0, i;
	int rc = -1, s;

	if (!bars || !idx) {
		err_nomem(err);
		goto out;
	}
	for (i = 0; i < a->n_jobs; i++)
		idx[i] = i;
	p->chart_by_machine = by_machine;
	qsort_r(idx, a->n_jobs, sizeof(*idx), key_cmp, p);
	for (i = 0; i < a->n_jobs; i++) {
		const char *key = bar_key(a, by_machine, idx[i]);

		if (!nb || strcasecmp(nz(bars[nb - 1].key), nz(key)))
			bars[nb++].key = key;
		bars[nb - 1].c[a->jobs[idx[i]].status]++;
		bars[nb - 1].tot++;
		bars[nb - 1].act += p->act[idx[i]];
	}
	qsort(bars, nb, sizeof(*bars), bar_cmp);
	if (buf_appends(b, "<div class=\"chart\">\n", err) < 0)
		goto out;
	for (i = 0; i < nb && i < CHART_BARS; i++) {
		if (buf_appends(b, "<div class=\"bar\"><span class=\"label\">", err) < 0 ||
		    escape_html(b, bars[i].key && *bars[i].key ? bars[i].key : "(none)", err) < 0 ||
		    buf_appends(b, "</span><span class=\"track\">", err) < 0)
			goto out;
		for (s = 0; s < STATUS_COUNT; s++)
			if (bars[i].c[s] &&
			    buf_appendf(b, err, "<i class=\"bg-%s\" style=\"width:%.2f%%\" "
					"title=\"%s: %zu\"></i>",
					analysis_status_name((enum job_status)s),
					100.0 * (double)bars[i].c[s] / (double)bars[i].tot,
					analysis_status_name((enum job_status)s), bars[i].c[s]) < 0)
				goto out;
		if (buf_appendf(b, err, "</span><span class=\"n\">%zu</span></div>\n",
				bars[i].tot) < 0)
			goto out;
	}
	if (nb > CHART_BARS &&
	    buf_appendf(b, err, "<p class=\"more\">and %zu more %s with fewer jobs needing "
			"action (every job is in the list above and in --format csv)</p>\n",
			nb - CHART_BARS, by_machine ? "machines" : "schedules") < 0)
		goto out;
	if (buf_appends(b, "<div class=\"legend\">", err) < 0)
		goto out;
	for (s = 0; s < STATUS_COUNT; s++)
		if (buf_appendf(b, err, "<i class=\"bg-%s\"></i>%s",
				analysis_status_name((enum job_status)s),
				analysis_status_name((enum job_status)s)) < 0)
			goto out;
	rc = buf_appends(b, "</div></div>\n", err);
out:
	free(bars);
	free(idx);
	return rc < 0 ? -1 : 0;
}

static int html_header(struct page *p, struct ms_err *err)
{
	const struct audit *a = p->a;
	struct buf *b = p->b;
	time_t made = p->o->made ? p->o->made : time(NULL);
	char iso[32] = "", shown[32] = "";
	struct tm tm;

	if (gmtime_r(&made, &tm)) {
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
		strftime(shown, sizeof(shown), "%Y-%m-%d %H:%M UTC", &tm);
	}
	T("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	  "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
	  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	  "<title>Mail connector audit</title>\n<style>\n");
	T(html_style_css());
	T("</style>\n</head>\n<body>\n<header><h1>Mail connector audit</h1><p>Fleet <code>");
	E(p->o->fleet_dir);
	F("</code> &middot; %zu connector job%s on %zu machine%s &middot; %zu INI file%s",
	  a->n_jobs, a->n_jobs == 1 ? "" : "s", a->n_machines,
	  a->n_machines == 1 ? "" : "s", a->n_inis, a->n_inis == 1 ? "" : "s");
	F(" &middot; made <time datetime=\"%s\">%s</time>", iso, shown);
	if (p->o->version) {
		T(" by mailshift-audit ");
		E(p->o->version);
	}
	T("</p>");
	if (audit_read_nothing(a) || audit_incomplete(a)) {
		buf_reset(&p->tmp);
		if (report_headline(a, &p->tmp, err) < 0)
			return -1;
		T("<p class=\"alert\">");
		E(p->tmp.data);
		T("</p>");
	}
	return buf_appends(b, "<nav><a href=\"#work\">Work by INI file</a><a href=\"#machines\">"
			   "Machines</a><a href=\"#schedules\">Schedules</a><a href=\"#findings\">"
			   "What the findings mean</a></nav></header>\n<main>\n", err);
}

static int html_summary(struct page *p, struct ms_err *err)
{
	const struct audit *a = p->a;
	struct buf *b = p->b;
	size_t nm = a->counts[STATUS_NEEDS_MIGRATION], nr = a->counts[STATUS_AT_RISK];
	int s;

	T("<h2>Summary</h2>\n<div class=\"cards\" role=\"group\" aria-label=\"Show only\">\n");
	F("<button type=\"button\" class=\"card s-action\" data-f=\"action\" aria-pressed=\"false\">"
	  "<b>%zu</b><span>need action</span></button>\n", p->n_action);
	for (s = 0; s < STATUS_COUNT; s++)
		F("<button type=\"button\" class=\"card s-%s\" data-f=\"%s\" aria-pressed=\"false\">"
		  "<b>%zu</b><span>%s</span></button>\n", analysis_status_name((enum job_status)s),
		  analysis_status_name((enum job_status)s), a->counts[s],
		  analysis_status_name((enum job_status)s));
	F("<button type=\"button\" class=\"card\" data-f=\"orphan\" aria-pressed=\"false\">"
	  "<b>%zu</b><span>orphan INI files</span></button>\n", a->n_orphans);
	F("<a class=\"card\" href=\"#notify\"><b>%zu</b><span>basic SMTP slots</span></a>\n",
	  a->n_notify_basic);
	if (a->n_problems)
		F("<a class=\"card\" href=\"#problems\"><b>%zu</b><span>unreadable exports</span></a>\n",
		  a->n_problems);
	F("</div>\n<p class=\"lead\" elementtiming=\"summary\"><b>%zu of %zu connector job%s need%s action.</b>", p->n_action,
	  a->n_jobs, a->n_jobs == 1 ? "" : "s", p->n_action == 1 ? "s" : "");
	if (nm)
		F(" %zu read%s an Exchange Online mailbox with a password, which Microsoft no "
		  "longer accepts.", nm, nm == 1 ? "s" : "");
	if (nr)
		F(" %zu depend%s on the incumbent's MSAL sign-in, which lapses when its token is "
		  "not renewed.", nr, nr == 1 ? "s" : "");
	if (a->counts[STATUS_BROKEN])
		F(" %zu cannot run or cannot be evaluated.", a->counts[STATUS_BROKEN]);
	if (a->migrated_errors)
		F(" %zu %s migrated but still ha%s an error to fix.", a->migrated_errors,
		  a->migrated_errors == 1 ? "is" : "are", a->migrated_errors == 1 ? "s" : "ve");
	if (a->n_notify_basic)
		F(" %zu notification SMTP slot%s still use%s basic SMTP AUTH.", a->n_notify_basic,
		  a->n_notify_basic == 1 ? "" : "s", a->n_notify_basic == 1 ? "s" : "");
	return buf_appends(b, "</p>\n", err);
}

/* The groups: the first ones as HTML, all of them as data. */
static int html_work(struct page *p, size_t *n0, struct ms_err *err)
{
	struct buf *b = p->b;
	size_t rows = 0, shown = 0, i;
	int s, open = p->a->n_jobs <= OPEN_UP_TO;

	F("<h2 id=\"work\">Work by INI file</h2>\n<p>Each INI file is migrated as one: its "
	  "jobs are folded inside it. Those with jobs needing action come first.</p>\n"
	  "<div class=\"controls\"><input id=\"q\" type=\"search\" placeholder=\"Filter jobs\" "
	  "aria-label=\"Filter jobs\"><select id=\"st\" aria-label=\"Status\">"
	  "<option value=\"\">all jobs</option><option value=\"action\">need action</option>");
	for (s = 0; s < STATUS_COUNT; s++)
		F("<option>%s</option>", analysis_status_name((enum job_status)s));
	F("<option value=\"orphan\">orphan INI files</option></select>"
	  "<span id=\"shown\" role=\"status\">%zu jobs in %zu INI files</span></div>\n"
	  "<div id=\"groups\">\n", p->a->n_jobs, p->ng);
	for (i = 0; i < p->ng && i < FIRST_GROUPS; i++) {
		size_t r = p->g[i].n < FIRST_ROWS - rows ? p->g[i].n : FIRST_ROWS - rows;

		rows += r;
		shown += p->g[i].n;
		if (html_group(p, i, open, r, err) < 0 || report_spill(b, p->k, 0, err) < 0)
			return -1;
	}
	*n0 = i;
	T("</div>\n");
	if (i < p->ng)
		F("<p class=\"more\" id=\"more\">%zu more INI files with %zu jobs are listed "
		  "when the page's script runs (every job is also in --format csv).</p>\n",
		  p->ng - i, p->a->n_jobs - shown);
	return 0;
}

static int code_used(const struct audit *a, const char *code)
{
	size_t i, k;

	for (i = 0; i < a->n_jobs; i++)
		for (k = 0; k < a->jobs[i].n_findings; k++)
			if (strcmp(a->jobs[i].findings[k].code, code) == 0)
				return 1;
	for (i = 0; i < a->n_inis; i++)
		for (k = 0; k < a->inis[i].n_findings; k++)
			if (strcmp(a->inis[i].findings[k].code, code) == 0)
				return 1;
	for (i = 0; i < a->n_notify; i++)
		for (k = 0; k < a->notify[i].n_findings; k++)
			if (strcmp(a->notify[i].findings[k].code, code) == 0)
				return 1;
	return 0;
}

/* Notification slots, unreadable exports, ignored files, the catalogue. */
static int html_rest(struct page *p, struct ms_err *err)
{
	const struct audit *a = p->a;
	struct buf *b = p->b;
	size_t i;

	T("<h2 id=\"notify\">Notification SMTP slots</h2>\n");
	if (!a->n_notify)
		T("<p>None found in the exports.</p>\n");
	else
		T("<table class=\"sortable\"><thead><tr><th>Export</th><th>Slot</th>"
		  "<th>Server</th><th>Auth</th><th>Findings</th></tr></thead><tbody>\n");
	for (i = 0; i < a->n_notify; i++) {
		const struct audit_notify *n = &a->notify[i];

		T("<tr><td>");
		E(n->source);
		F("</td><td>%d</td><td>", n->slot);
		E(n->server);
		F(":%d</td><td>", n->port);
		E(n->auth);
		T("</td><td>");
		if (html_findings(b, n->findings, n->n_findings, err) < 0)
			return -1;
		T("</td></tr>\n");
	}
	if (a->n_notify)
		T("</tbody></table>\n");
	if (a->n_problems)
		T("<h2 id=\"problems\">Exports that could not be read</h2>\n<ul>\n");
	for (i = 0; i < a->n_problems; i++) {
		T("<li><code>");
		E(a->problems[i].file);
		if (a->problems[i].line)
			F(":%d", a->problems[i].line);
		T("</code> ");
		E(a->problems[i].message);
		T("</li>\n");
	}
	if (a->n_problems)
		T("</ul>\n");
	if (a->n_ignored)
		T("<h2>Files in jobs/ that were not read</h2>\n<ul>\n");
	for (i = 0; i < a->n_ignored; i++) {
		T("<li><code>");
		E(a->ignored[i].file);
		T("</code> ");
		E(a->ignored[i].message);
		T("</li>\n");
	}
	if (a->n_ignored)
		T("</ul>\n");
	T("<h2 id=\"findings\">What the findings mean</h2>\n<dl>\n");
	for (i = 0; i < report_catalogue_n; i++) {
		if (!code_used(a, report_catalogue[i].code))
			continue;
		F("<dt id=\"f-%s\">%s</dt><dd>", report_catalogue[i].code,
		  report_catalogue[i].code);
		E(report_catalogue[i].why);
		T("<br><b>Fix:</b> ");
		E(report_catalogue[i].fix);
		T("</dd>\n");
	}
	return buf_appends(b, "</dl>\n</main>\n", err);
}

int report_render_html(const struct audit *a, const struct report_opts *o,
		       struct buf *b, struct sink *k, struct ms_err *err)
{
	struct page p;
	size_t n0 = 0;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	p.a = a;
	p.o = o;
	p.b = b;
	p.k = k;
	buf_init(&p.tmp, 1024 * 1024);
	if (build_groups(&p, err) < 0 || html_header(&p, err) < 0 ||
	    html_summary(&p, err) < 0 || html_work(&p, &n0, err) < 0)
		goto out;
	if (a->n_jobs &&
	    (buf_appends(b, "<h2 id=\"machines\">Status by machine</h2>\n", err) < 0 ||
	     html_chart(&p, 1, err) < 0 ||
	     buf_appends(b, "<h2 id=\"schedules\">Status by schedule</h2>\n", err) < 0 ||
	     html_chart(&p, 0, err) < 0))
		goto out;
	if (html_rest(&p, err) < 0 || json_data(&p, n0, err) < 0 ||
	    buf_appends(b, "<script>\n", err) < 0 || buf_appends(b, html_style_table_js(), err) < 0 ||
	    buf_appends(b, audit_js, err) < 0 ||
	    buf_appends(b, "</script>\n</body>\n</html>\n", err) < 0)
		goto out;
	rc = 0;
out:
	free(p.act);
	free(p.order);
	free(p.g);
	strtab_release(&p.st);
	buf_release(&p.tmp);
	return rc;
}
