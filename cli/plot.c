/* plot.c: `simulate --plot`: an SVG with two panels over the future
 * window, the copied fraction of the volume and the cumulative stalls,
 * one coloured line per policy. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "replace-file.h"

#define W 800
#define PANEL_H 260
#define LEFT 70
#define TOP 40
#define GAP 60

static const char *const colours[] = {
  "#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2",
};

static void
escape (FILE *fp, const char *s)
{
  for (; *s; s++)
    switch (*s) {
    case '<': fputs ("&lt;", fp); break;
    case '>': fputs ("&gt;", fp); break;
    case '&': fputs ("&amp;", fp); break;
    default: fputc (*s, fp);
    }
}

/* One panel: Y(i, point) in [0, ymax], plotted at panel top Y0. */
static void
panel (FILE *fp, const struct sim_result *res, int n, int y0,
       const char *label, double ymax, int stalls)
{
  const int w = W - LEFT - 160;
  double tmax = res[0].curve[SIM_CURVE_POINTS].t;

  if (tmax <= 0)
    tmax = 1;
  if (ymax <= 0)
    ymax = 1;
  fprintf (fp, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' "
           "stroke='black'/>\n", LEFT, y0, w, PANEL_H);
  fprintf (fp, "<text x='%d' y='%d' font-size='13'>%s</text>\n", LEFT,
           y0 - 6, label);
  fprintf (fp, "<text x='%d' y='%d' font-size='11' text-anchor='end'>%.6g"
           "</text>\n", LEFT - 4, y0 + 10, ymax);
  fprintf (fp, "<text x='%d' y='%d' font-size='11' text-anchor='end'>0"
           "</text>\n", LEFT - 4, y0 + PANEL_H);
  fprintf (fp, "<text x='%d' y='%d' font-size='11' text-anchor='end'>"
           "%.3g s</text>\n", LEFT + w, y0 + PANEL_H + 14, tmax);
  for (int i = 0; i < n; i++) {
    fprintf (fp, "<polyline fill='none' stroke-width='2' stroke='%s' "
             "points='", colours[i % 8]);
    for (int p = 0; p <= SIM_CURVE_POINTS; p++) {
      const struct sim_point *pt = &res[i].curve[p];
      double v = stalls ? (double) pt->stalls : pt->coverage;
      fprintf (fp, "%.1f,%.1f ", LEFT + pt->t / tmax * w,
               y0 + PANEL_H - v / ymax * PANEL_H);
    }
    fprintf (fp, "'/>\n");
  }
}

int
plot_svg (const char *path, const struct sim_result *res, int n,
          const char *title, mode_t mode)
{
  struct replace_file rf;
  FILE *fp;
  double max_stalls = 0;
  int h = TOP + 2 * PANEL_H + GAP + 40;

  if (replace_file_begin (&rf, path, mode) == -1)
    return die ("%s: %s", path, strerror (errno)) ? -1 : -1;
  fp = rf.fp;
  for (int i = 0; i < n; i++)
    if (res[i].curve[SIM_CURVE_POINTS].stalls > max_stalls)
      max_stalls = res[i].curve[SIM_CURVE_POINTS].stalls;
  fprintf (fp, "<?xml version='1.0' encoding='UTF-8'?>\n"
           "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
           "font-family='sans-serif'>\n<title>", W, h);
  escape (fp, title);
  fprintf (fp, "</title>\n<text x='%d' y='18' font-size='14'>", LEFT);
  escape (fp, title);
  fprintf (fp, "</text>\n");
  panel (fp, res, n, TOP, "fraction of the volume copied", 1, 0);
  panel (fp, res, n, TOP + PANEL_H + GAP, "cumulative stalls", max_stalls, 1);
  for (int i = 0; i < n; i++)
    fprintf (fp, "<text x='%d' y='%d' font-size='13' fill='%s'>%s</text>\n",
             W - 150, TOP + 20 + 18 * i, colours[i % 8], res[i].policy);
  fprintf (fp, "</svg>\n");
  if (replace_file_commit (&rf, REPLACE_SYNC) == -1)
    return die ("%s: write error: %s", path, strerror (errno)) ? -1 : -1;
  return 0;
}
