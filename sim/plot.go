package sim

import (
	"fmt"
	"image/color"
	"io"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Recorder keeps a run's trajectory for a plot, in at most a fixed number of buckets per
// series: arrivals and replicas averaged within a bucket, the backlog age at its highest.
type Recorder struct {
	Label  string
	bucket int // seconds per bucket
	points []bucket
}

type bucket struct {
	arrivals, replicas, age float64
	n                       int
}

// NewRecorder returns a Recorder for a run of seconds seconds, kept in at most buckets
// buckets.
func NewRecorder(label string, seconds, buckets int) *Recorder {
	return &Recorder{Label: label, bucket: max(1, (seconds+buckets-1)/buckets)}
}

// Add records one second; it fits Config.Trajectory.
func (r *Recorder) Add(p Point) {
	i := int(p.Time/time.Second) / r.bucket
	for len(r.points) <= i {
		r.points = append(r.points, bucket{})
	}
	b := &r.points[i]
	b.arrivals += p.Arrivals
	b.replicas += float64(p.Replicas)
	b.age = max(b.age, p.Age.Seconds())
	b.n++
}

func (r *Recorder) xy(value func(bucket) float64) plotter.XYs {
	out := make(plotter.XYs, 0, len(r.points))
	for i, b := range r.points {
		if b.n == 0 {
			continue
		}
		out = append(out, plotter.XY{X: float64(i*r.bucket) / 3600, Y: value(b)})
	}
	return out
}

var palette = []color.Color{color.RGBA{R: 214, G: 96, B: 77, A: 255}, color.RGBA{R: 33, G: 102, B: 172, A: 255}, color.RGBA{R: 90, G: 170, B: 90, A: 255}}

// Plot draws the runs recorded by recs (of one trace) in three panels over time: the
// arrivals, the backlog age against target, and the replicas. format is "png" or "svg".
func Plot(w io.Writer, format, title string, target time.Duration, recs ...*Recorder) error {
	if len(recs) == 0 {
		return fmt.Errorf("nothing to plot")
	}
	arrivals, age, replicas := plot.New(), plot.New(), plot.New()
	arrivals.Title.Text = title
	arrivals.Y.Label.Text = "arrivals (msg/s)"
	age.Y.Label.Text = "oldest message (s)"
	replicas.Y.Label.Text = "replicas"
	replicas.X.Label.Text = "hours"
	if err := addLine(arrivals, "", recs[0].xy(func(b bucket) float64 { return b.arrivals / float64(b.n) }), color.Gray{Y: 90}); err != nil {
		return err
	}
	end := 0.0
	for i, r := range recs {
		c := palette[i%len(palette)]
		if err := addLine(age, r.Label, r.xy(func(b bucket) float64 { return b.age }), c); err != nil {
			return err
		}
		pts := r.xy(func(b bucket) float64 { return b.replicas / float64(b.n) })
		if err := addLine(replicas, r.Label, pts, c); err != nil {
			return err
		}
		if len(pts) > 0 {
			end = max(end, pts[len(pts)-1].X)
		}
	}
	limit, err := plotter.NewLine(plotter.XYs{{X: 0, Y: target.Seconds()}, {X: end, Y: target.Seconds()}})
	if err != nil {
		return err
	}
	limit.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	age.Add(limit)
	age.Legend.Add("target", limit)
	age.Legend.Top = true
	replicas.Legend.Top = true
	return render(w, format, [][]*plot.Plot{{arrivals}, {age}, {replicas}})
}

func addLine(p *plot.Plot, label string, pts plotter.XYs, c color.Color) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = vg.Points(0.8)
	p.Add(l)
	if label != "" {
		p.Legend.Add(label, l)
	}
	return nil
}

func render(w io.Writer, format string, plots [][]*plot.Plot) error {
	width, height := 10*vg.Inch, 8*vg.Inch
	var canvas interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.New(width, height)}
	case "svg":
		canvas = vgsvg.New(width, height)
	default:
		return fmt.Errorf("plot format %q: want png or svg", format)
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter, PadY: 3 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	_, err := canvas.WriteTo(w)
	return err
}
