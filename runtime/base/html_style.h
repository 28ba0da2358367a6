/*
 * html_style.h - the stylesheet and the table script (sorting, filtering
 * by status and text) of the HTML reports, shared by mailshift-audit and
 * mailshift-verify so both look alike.  Below both engines, which may not
 * include each other.
 *
 * Ownership: static strings; the CSS without <style>, the script without
 * <script>.
 */
#ifndef MS_HTML_STYLE_H
#define MS_HTML_STYLE_H

const char *html_style_css(void);
const char *html_style_table_js(void);

#endif
