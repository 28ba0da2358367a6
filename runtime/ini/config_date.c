/*
 * config_date.c - [General] LastRunDate: the incumbent's date format
 * ("M/D/YYYY h:mm:ss AM", local time; ISO 8601 also read), and writing
 * the value back into the INI file after a run (see config.h).
 */
#include "ini/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <ctype.h>

#include "ini/ini.h"

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

static int valid_tm(int y, int mo, int d, int h, int mi, int s)
{
	return y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 &&
	       d <= days_in_month(y, mo) && h >= 0 && h <= 23 && mi >= 0 &&
	       mi <= 59 && s >= 0 && s <= 60;
}

static int make_time(int y, int mo, int d, int h, int mi, int s, int utc,
		     long off_min, time_t *out)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = t - (utc ? off_min * 60 : 0);
	return 0;
}

int config_parse_run_date(const char *s, time_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, pos;
	char ampm[3] = "";

	if (!s)
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	/* ISO 8601: YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM] */
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) {
		const char *p = s + n;
		int utc = 0;
		long off = 0;

		if (*p == 'T' || *p == 't' || *p == ' ') {
			pos = 0;
			if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &pos) != 2 || pos != 5)
				return -1;
			p += 1 + pos;
			if (*p == ':') {
				pos = 0;
				if (sscanf(p + 1, "%2d%n", &sec, &pos) != 1 || pos != 2)
					return -1;
				p += 1 + pos;
				if (*p == '.' || *p == ',') {
					p++;
					while (isdigit((unsigned char)*p))
						p++;
				}
			}
		}
		if (*p == 'Z' || *p == 'z') {
			utc = 1;
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om = 0, sign = *p == '-' ? -1 : 1;

			pos = 0;
			if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &pos) == 2 && pos == 5)
				;
			else if (sscanf(p + 1, "%2d%2d%n", &oh, &om, &pos) == 2 && pos == 4)
				;
			else
				return -1;
			if (oh > 14 || om > 59)
				return -1;
			utc = 1;
			off = sign * (oh * 60L + om);
			p += 1 + pos;
		}
		while (isspace((unsigned char)*p))
			p++;
		if (*p || !valid_tm(y, mo, d, h, mi, sec))
			return -1;
		return make_time(y, mo, d, h, mi, sec, utc, off, out);
	}
	/* the incumbent's: M/D/YYYY[ h:mm[:ss][ AM|PM]] */
	n = 0;
	if (sscanf(s, "%2d/%2d/%4d%n", &mo, &d, &y, &n) != 3 || y < 1000)
		return -1;
	s += n;
	while (*s == ' ')
		s++;
	if (*s) {
		pos = 0;
		if (sscanf(s, "%2d:%2d%n", &h, &mi, &pos) != 2)
			return -1;
		s += pos;
		if (*s == ':') {
			pos = 0;
			if (sscanf(s + 1, "%2d%n", &sec, &pos) != 1)
				return -1;
			s += 1 + pos;
		}
		while (*s == ' ')
			s++;
		if (*s) {
			if (!((s[0] == 'A' || s[0] == 'a' || s[0] == 'P' || s[0] == 'p') &&
			      (s[1] == 'M' || s[1] == 'm')))
				return -1;
			ampm[0] = (char)toupper((unsigned char)s[0]);
			s += 2;
			while (*s == ' ')
				s++;
			if (*s)
				return -1;
			if (h < 1 || h > 12)
				return -1;
			if (ampm[0] == 'A' && h == 12)
				h = 0;
			else if (ampm[0] == 'P' && h != 12)
				h += 12;
		}
	}
	if (!valid_tm(y, mo, d, h, mi, sec))
		return -1;
	return make_time(y, mo, d, h, mi, sec, 0, 0, out);
}

void config_format_run_date(time_t t, char *out, size_t outsz)
{
	struct tm tm;
	int h;

	if (!localtime_r(&t, &tm)) {
		snprintf(out, outsz, "1/1/1970 12:00:00 AM");
		return;
	}
	h = tm.tm_hour % 12;
	snprintf(out, outsz, "%d/%d/%d %d:%02d:%02d %s", tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_year + 1900, h ? h : 12, tm.tm_min, tm.tm_sec,
		 tm.tm_hour < 12 ? "AM" : "PM");
}

int config_save_run_date(const char *path, time_t t, struct ms_err *err)
{
	struct ini *ini = NULL;
	char date[64];
	int rc = -1;

	config_format_run_date(t, date, sizeof(date));
	if (ini_load(&ini, path, err) < 0)
		goto out;
	if (ini_set(ini, "General", "LastRunDate", date, err) < 0 ||
	    ini_save(ini, path, err) < 0) {
		err_prefix(err, "cannot update LastRunDate in '%s'", path);
		goto out;
	}
	rc = 0;
out:
	ini_free(ini);
	return rc;
}
