package io.kfold.bench;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A bar chart of a fold run, {@code fold.png} beside its results file: events/s per reader, grouped
 * by input, with the ratios under each group. Drawn with Java2D alone, so it needs no display and
 * nothing beyond the JDK; it is redrawn by every fold run from the file that run wrote.
 */
final class FoldChart {

  /** The narrowest chart; each group of bars gets at least {@link #GROUP_WIDTH}, for its ratio line. */
  private static final int WIDTH = 1000;
  private static final int GROUP_WIDTH = 470;
  private static final int HEIGHT = 580;
  private static final int LEFT = 90;
  private static final int RIGHT = 30;
  private static final int TOP = 90;
  private static final int BOTTOM = 110;

  /** One bar of a group: who read, and how fast. */
  private record Bar(String reader, double eventsPerSecond, Color color) {}

  private FoldChart() {}

  /**
   * Draws the chart of {@code json} (the run just written to {@code file}) to {@code fold.png} in the
   * same folder. A machine without fonts cannot draw text: the run's figures are in the file anyway,
   * so the failure is reported and the run goes on.
   */
  static void drawBeside(Path file, Map<String, Object> json) {
    Path png = file.resolveSibling("fold.png");
    try {
      draw(json, file.getFileName().toString().replaceFirst("\\.json$", ""), png);
      System.out.println("chart: " + png);
    } catch (Exception | LinkageError | InternalError e) {
      System.out.println("WARNING: the chart was not drawn: " + e);
    }
  }

  static void draw(Map<String, Object> json, String runName, Path png) throws IOException {
    // Before the first AWT class loads: there is no display, and none is needed.
    System.setProperty("java.awt.headless", "true");
    List<Map<String, Object>> inputs = Bench.list(json, "inputs");
    List<List<Bar>> groups = new ArrayList<>();
    double max = 0;
    for (Map<String, Object> input : inputs) {
      List<Bar> bars = new ArrayList<>();
      bars.add(new Bar("raw consumer (reads only)", FoldBenchmark.rate((Map<?, ?>) input.get("raw")),
          new Color(0x9e9e9e)));
      bars.add(new Bar("kfold", FoldBenchmark.rate((Map<?, ?>) input.get("kfold")), new Color(0xe6550d)));
      Map<?, ?> streams = (Map<?, ?>) input.getOrDefault("streams", Map.of());
      for (String guarantee : StreamsRun.GUARANTEES) {
        if (streams.containsKey(guarantee)) {
          bars.add(new Bar("Kafka Streams, " + guarantee, FoldBenchmark.rate((Map<?, ?>) streams.get(guarantee)),
              guarantee.startsWith("exactly") ? new Color(0x6baed6) : new Color(0x2171b5)));
        }
      }
      groups.add(bars);
      for (Bar bar : bars) {
        max = Math.max(max, bar.eventsPerSecond());
      }
    }
    double axisMax = niceCeiling(max);

    int width = Math.max(WIDTH, LEFT + RIGHT + groups.size() * GROUP_WIDTH);
    BufferedImage image = new BufferedImage(width, HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, width, HEIGHT);

      g.setColor(Color.BLACK);
      g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 18));
      g.drawString("Fold throughput, events/s (higher is better)", LEFT, 30);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
      Map<?, ?> machine = (Map<?, ?>) json.get("machine");
      g.drawString(String.format("%s, kfold %s, %s cores, Java %s", runName, json.get("revision"),
          machine.get("nproc"), machine.get("java")), LEFT, 50);

      int plotWidth = width - LEFT - RIGHT;
      int plotHeight = HEIGHT - TOP - BOTTOM;
      int baseline = TOP + plotHeight;

      // Grid and axis: five steps of a round number.
      for (int i = 0; i <= 5; i++) {
        double value = axisMax * i / 5;
        int y = baseline - (int) Math.round(plotHeight * i / 5.0);
        g.setColor(i == 0 ? Color.BLACK : new Color(0xe0e0e0));
        g.drawLine(LEFT, y, LEFT + plotWidth, y);
        g.setColor(Color.BLACK);
        String label = compact(value);
        g.drawString(label, LEFT - 8 - g.getFontMetrics().stringWidth(label), y + 4);
      }

      // Groups side by side, bars within a group side by side, a gap between groups.
      int groupWidth = plotWidth / Math.max(1, groups.size());
      for (int gi = 0; gi < groups.size(); gi++) {
        List<Bar> bars = groups.get(gi);
        int x0 = LEFT + gi * groupWidth;
        int barWidth = Math.min(110, (groupWidth - 60) / bars.size());
        int barsStart = x0 + (groupWidth - barWidth * bars.size()) / 2;
        for (int bi = 0; bi < bars.size(); bi++) {
          Bar bar = bars.get(bi);
          int height = (int) Math.round(plotHeight * bar.eventsPerSecond() / axisMax);
          int x = barsStart + bi * barWidth;
          g.setColor(bar.color());
          g.fillRect(x + 4, baseline - height, barWidth - 8, height);
          g.setColor(Color.BLACK);
          g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
          centered(g, compact(bar.eventsPerSecond()), x + barWidth / 2, baseline - height - 6);
        }
        Map<String, Object> input = inputs.get(gi);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 13));
        centered(g, String.valueOf(input.get("label")), x0 + groupWidth / 2, baseline + 22);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        centered(g, ratios(input), x0 + groupWidth / 2, baseline + 42);
      }

      legend(g, groups.stream().max((a, b) -> Integer.compare(a.size(), b.size())).orElse(List.of()));
    } finally {
      g.dispose();
    }
    ImageIO.write(image, "png", png.toFile());
  }

  private static void legend(Graphics2D g, List<Bar> bars) {
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    FontMetrics metrics = g.getFontMetrics();
    int x = LEFT;
    int y = HEIGHT - 30;
    for (Bar bar : bars) {
      g.setColor(bar.color());
      g.fillRect(x, y - 10, 12, 12);
      g.setColor(Color.BLACK);
      g.setStroke(new BasicStroke(1));
      g.drawString(bar.reader(), x + 18, y);
      x += 18 + metrics.stringWidth(bar.reader()) + 28;
    }
  }

  private static String ratios(Map<String, Object> input) {
    StringBuilder text = new StringBuilder(String.format("kfold/raw %.3f", ((Number) input.get("ratio")).doubleValue()));
    Map<?, ?> toStreams = (Map<?, ?>) input.getOrDefault("kfoldToStreams", Map.of());
    for (String guarantee : StreamsRun.GUARANTEES) {
      if (toStreams.containsKey(guarantee)) {
        text.append(String.format(", kfold/Streams %s %.2f", StreamsRun.shortName(guarantee),
            ((Number) toStreams.get(guarantee)).doubleValue()));
      }
    }
    return text.toString();
  }

  private static void centered(Graphics2D g, String text, int x, int y) {
    g.drawString(text, x - g.getFontMetrics().stringWidth(text) / 2, y);
  }

  /** 1,215,085 as "1.22M", 47,491 as "47.5k": the chart shows magnitudes, the file has the digits. */
  private static String compact(double value) {
    if (value >= 1e6) {
      return String.format("%.2fM", value / 1e6);
    }
    if (value >= 1e3) {
      return String.format(value >= 1e5 ? "%.0fk" : "%.1fk", value / 1e3);
    }
    return String.format("%.0f", value);
  }

  /**
   * A round top for the axis at or above {@code value}, close enough to it that the slow readers'
   * bars stay visible next to the raw consumer's.
   */
  private static double niceCeiling(double value) {
    if (value <= 0) {
      return 1;
    }
    double power = Math.pow(10, Math.floor(Math.log10(value)));
    for (double step : new double[] {1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10}) {
      if (step * power >= value) {
        return step * power;
      }
    }
    return 10 * power;
  }
}
