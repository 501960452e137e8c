package odp_dev.portal.solr;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;

/**
 * Runs Apache Solr for the local CKAN portal (development and tests): Solr's own embedded Jetty
 * server, JettySolrRunner, bound to 127.0.0.1 (JettySolrRunner binds to loopback only), on the
 * given port, with the cores found in the given Solr home, under the context /solr.
 *
 * <p>Usage: {@code java -cp ... odp_dev.portal.solr.Launcher PORT SOLR_HOME}. Prints one line when
 * every core is loaded; exits with status 1 when a core fails to load. SIGTERM stops Solr
 * cleanly (the index is closed).
 */
public final class Launcher {
  private Launcher() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: Launcher PORT SOLR_HOME");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    Path home = Path.of(args[1]).toAbsolutePath();
    if (!Files.isRegularFile(home.resolve("solr.xml"))) {
      System.err.println("no solr.xml in " + home);
      System.exit(2);
    }
    JettyConfig config =
        JettyConfig.builder()
            .setContext("/solr")
            .setPort(port)
            .stopAtShutdown(false)
            .waitForLoadingCoresToFinish(120_000L)
            .build();
    JettySolrRunner solr = new JettySolrRunner(home.toString(), config);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    solr.stop();
                  } catch (Exception e) {
                    e.printStackTrace();
                  } finally {
                    stopped.countDown();
                  }
                }));
    solr.start();
    Map<String, ?> failures = solr.getCoreContainer().getCoreInitFailures();
    if (!failures.isEmpty()) {
      failures.forEach((core, failure) -> System.err.println("core " + core + ": " + failure));
      System.exit(1);
    }
    System.out.println(
        "Solr is up at " + solr.getBaseUrl() + " with cores "
            + solr.getCoreContainer().getAllCoreNames());
    System.out.flush();
    stopped.await();
  }
}
