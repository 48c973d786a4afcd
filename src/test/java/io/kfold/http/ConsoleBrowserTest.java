package io.kfold.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kfold.Installed;
import io.kfold.TestBroker;
import io.kfold.TestNodes;
import io.kfold.TestNodes.Reply;
import io.kfold.config.NodeConfig;
import io.kfold.node.NodeRuntime;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The console in a real browser (headless Chromium through its WebDriver), against a real node
 * and broker, with API keys: the key prompt, an entity's state and a change arriving live, and a
 * worker's parked entity replayed with the button once its HTTP target is fixed.
 */
@ExtendWith(TestBroker.class)
class ConsoleBrowserTest {

  private static final String KEY = "an-operator-key-for-the-console-test";
  private static final Duration WAIT = Duration.ofSeconds(30);
  /** Screenshots of the console as the test sees it; README's docs/console.png is one of them. */
  private static final Path SCREENSHOTS = Path.of("target", "console");

  /** A service the worker calls: it answers 500 until the test fixes it, then 200, recording what it was given. */
  private static final class Target implements AutoCloseable {
    volatile boolean fixed;
    final AtomicInteger failed = new AtomicInteger();
    final List<JsonObject> delivered = new CopyOnWriteArrayList<>();
    private final HttpServer server;

    Target(Vertx vertx) throws Exception {
      server = vertx.createHttpServer().requestHandler(request -> request.body().onSuccess(body -> {
        if (fixed) {
          delivered.add(body.toJsonObject());
          request.response().end("ok");
        } else {
          failed.incrementAndGet();
          request.response().setStatusCode(500).end("broken");
        }
      })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
    }

    String url() {
      return "http://127.0.0.1:" + server.actualPort() + "/hook";
    }

    @Override
    public void close() throws Exception {
      server.close().await(10, TimeUnit.SECONDS);
    }
  }

  @Test
  @DisplayName("the console in Chromium with API keys: the key is asked for, an entity's state and a change sent"
      + " through the API appear live, a worker's entity parked by a failing target shows with its dead letter,"
      + " and Replay delivers it once the target is fixed")
  void consoleInABrowser() throws Exception {
    // Like the image check without podman: skipped, and said, where the browser is not installed;
    // .ci/run installs it, so CI always runs this test.
    Assumptions.assumeTrue(Installed.program("chromium", "chromium-browser", "google-chrome") != null && Installed.program("chromedriver") != null,
        "the console's browser test needs Chromium and its WebDriver on the PATH (Debian: apt-get install chromium"
            + " chromium-driver)");
    Vertx vertx = Vertx.vertx();
    WebClient client = WebClient.create(vertx);
    Target target = new Target(vertx);
    String app = TestNodes.newApp("console");
    Path dir = TestNodes.tempDir("console");
    NodeConfig config = NodeConfig.load(configFile(TestNodes.env(app, dir), dir, Map.of(
        "auth", "mode: api-keys\nclusterSecret: a-cluster-secret-for-the-console-test\napiKeys:\n"
            + "  operator: {sha256: " + TestNodes.sha256(KEY) + ", roles: [read, append, admin]}\n",
        "effects", "hook:\n  kind: http\n  entities: [users]\n  timeoutMs: 2000\n"
            + "  retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 50 }\n"
            + "  breaker: { failures: 1000, openMs: 1000 }\n"
            + "  target: { url: \"" + target.url() + "\" }\n")));
    NodeRuntime node = TestNodes.startCaughtUp(vertx, config);
    WebDriver browser = null;
    try {
      String base = "http://127.0.0.1:" + node.httpPort();
      Map<String, String> bearer = Map.of("Authorization", "Bearer " + KEY);
      Reply registered = TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/users/ada/events",
          "{\"events\":[{\"type\":\"Registered\",\"payload\":{\"name\":\"Ada\",\"email\":\"ada@example.com\"}}]}", bearer);
      assertThat(registered.status()).as("%s", registered.body()).isEqualTo(200);

      browser = chromium();
      WebDriverWait wait = new WebDriverWait(browser, WAIT);
      wait.ignoring(StaleElementReferenceException.class);

      // The page holds no data: its first call is refused, and it asks for a key.
      browser.get(base + "/console");
      until(wait, "the key prompt", b -> b.findElement(By.id("auth-form")).isDisplayed());
      assertThat(browser.findElement(By.id("auth-reason")).getText()).contains("401");
      browser.findElement(By.id("auth-key")).sendKeys(KEY);
      browser.findElement(By.id("auth-submit")).click();
      until(wait, "the key prompt gone", b -> !b.findElement(By.id("auth-form")).isDisplayed());
      until(wait, "the users type with its one entity", b -> text(b, "#types-rows tr[data-type='users'] td[data-field='entities']")
          .equals("1"));

      // An entity: its state and history, then a change sent through the API arrives live.
      browser.findElement(By.cssSelector("nav button[data-tab='entity']")).click();
      new Select(browser.findElement(By.id("entity-type"))).selectByValue("users");
      browser.findElement(By.id("entity-id")).sendKeys("ada");
      browser.findElement(By.id("entity-lookup")).click();
      until(wait, "ada's state at version 1", b -> text(b, "#entity-version").equals("version 1")
          && text(b, "#entity-state").contains("\"name\": \"Ada\""));
      until(wait, "ada's history", b -> text(b, "#entity-history tr[data-version='1']").contains("Registered"));
      until(wait, "the change stream open", b -> text(b, "#entity-stream").equals("live"));
      Reply moved = TestNodes.call(client, HttpMethod.POST, node.httpPort(), "/v1/users/ada/events",
          "{\"events\":[{\"type\":\"Moved\",\"payload\":{\"city\":\"<b>London</b>\"}}]}", bearer);
      assertThat(moved.status()).as("%s", moved.body()).isEqualTo(200);
      until(wait, "the change to version 2 live in the page", b ->
          text(b, "#entity-live li[data-version='2']").contains("Moved")
              && text(b, "#entity-state").contains("<b>London</b>") && text(b, "#entity-version").equals("version 2"));
      assertThat(browser.findElements(By.cssSelector("#entity-live .json b, #entity-state b"))).as("data is shown as text, never as markup")
          .isEmpty();
      until(wait, "the change in the history too", b -> text(b, "#entity-history tr[data-version='2']").contains("Moved"));
      screenshot(browser, "entity.png");

      // The target fails every call: the worker parks ada, its first change the dead letter.
      browser.findElement(By.cssSelector("nav button[data-tab='workers']")).click();
      String parked = "#parked .parked-entity[data-worker='hook'][data-key='ada']";
      until(wait, "ada parked with its dead letter", b -> text(b, parked).contains("ada:1")
          && text(b, parked + " .dead-letter").contains("answered 500"));
      assertThat(text(browser, "#workers-rows tr[data-worker='hook'] td[data-field='delivered']")).isEqualTo("0");
      assertThat(target.failed.get()).as("calls the target failed").isGreaterThanOrEqualTo(2);
      screenshot(browser, "workers.png");

      target.fixed = true;
      browser.findElement(By.cssSelector(parked + " button.replay")).click();
      until(wait, "ada's parked events delivered by the replay", b -> text(b, "#parked-status").contains("2 delivered")
          && b.findElements(By.cssSelector(parked)).isEmpty()
          && text(b, "#workers-rows tr[data-worker='hook'] td[data-field='delivered']").equals("2"));
      assertThat(target.delivered).as("what the fixed target received")
          .extracting(body -> body.getJsonObject("event").getString("key") + " v" + body.getJsonObject("event").getLong("version"))
          .containsExactly("ada v1", "ada v2");

      // The other sections read their endpoints: a list by index, the cluster, the views.
      browser.findElement(By.cssSelector("nav button[data-tab='list']")).click();
      new Select(browser.findElement(By.id("list-type"))).selectByValue("users");
      new Select(browser.findElement(By.id("list-index"))).selectByValue("email");
      browser.findElement(By.id("list-value")).sendKeys("ada@example.com");
      browser.findElement(By.id("list-run")).click();
      until(wait, "ada listed by email", b -> text(b, "#list-rows tr[data-key='ada']").contains("London"));
      browser.findElement(By.cssSelector("nav button[data-tab='cluster']")).click();
      until(wait, "this node live, folding partitions, ready", b -> text(b, "#cluster-nodes tr").contains("live")
          && text(b, "#cluster-nodes tr").contains(config.eventsTopic("users")) && text(b, "#cluster-ready").equals("READY")
          && text(b, "#cluster-loops").contains("fold"));
      browser.findElement(By.cssSelector("nav button[data-tab='views']")).click();
      until(wait, "the customers view live", b -> text(b, "#views-rows tr[data-view='customers']").contains("live"));
      browser.findElement(By.cssSelector("#views-rows tr[data-view='customers'] button")).click();
      until(wait, "the customers view's rows", b -> text(b, "#view-rows-title").equals("Rows of customers")
          && !text(b, "#view-rows").isEmpty());
      assertThat(text(browser, "#error")).as("no call of the page failed").isEmpty();
    } finally {
      if (browser != null) {
        browser.quit();
      }
      node.stop().await(60, TimeUnit.SECONDS);
      target.close();
      vertx.close().await(30, TimeUnit.SECONDS);
    }
  }

  /** Headless Chromium and its driver, both found on the PATH: nothing is downloaded. */
  private static WebDriver chromium() {
    Path browser = Installed.program("chromium", "chromium-browser", "google-chrome");
    Path driver = Installed.program("chromedriver");
    ChromeOptions options = new ChromeOptions().setBinary(browser.toFile())
        .addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900");
    ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(driver.toFile())
        .usingAnyFreePort().build();
    return new ChromeDriver(service, options);
  }

  private static void until(WebDriverWait wait, String what, Function<WebDriver, Boolean> condition) {
    wait.withMessage(what).until(condition);
  }

  /** The text of the first element the selector finds, or "" while there is none. */
  private static String text(WebDriver browser, String selector) {
    List<WebElement> found = browser.findElements(By.cssSelector(selector));
    return found.isEmpty() ? "" : found.get(0).getText();
  }

  private static void screenshot(WebDriver browser, String name) throws Exception {
    Files.createDirectories(SCREENSHOTS);
    // The page's body only: no empty window below it.
    Files.copy(browser.findElement(By.tagName("body")).getScreenshotAs(OutputType.FILE).toPath(),
        SCREENSHOTS.resolve(name), StandardCopyOption.REPLACE_EXISTING);
  }

  /** Adds to {@code env} a configuration file in {@code dir}: the shipped one with these sections replaced. */
  private static Map<String, String> configFile(Map<String, String> env, Path dir, Map<String, String> sections)
      throws Exception {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    ObjectNode conf = (ObjectNode) yaml.readTree(Path.of("conf", "kfold.yaml").toFile());
    for (Map.Entry<String, String> section : sections.entrySet()) {
      conf.set(section.getKey(), yaml.readTree(section.getValue()));
    }
    Path file = dir.resolve("kfold-console-test.yaml");
    Files.createDirectories(dir);
    yaml.writeValue(file.toFile(), conf);
    Map<String, String> withFile = new java.util.HashMap<>(env);
    withFile.put("KFOLD_CONFIG", file.toString());
    return withFile;
  }

}
