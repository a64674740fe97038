package dev.psg4j.report;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Properties;

/**
 * What psg4j's self-contained HTML pages (the check report, the bench page) share: Apache ECharts
 * inlined from the {@code org.webjars.npm:echarts} jar, so a page needs neither a network nor other
 * files, and the escaping of text, JSON and scripts put into a page.
 */
public final class HtmlPages {
    private static final String ECHARTS_POM = "/META-INF/maven/org.webjars.npm/echarts/pom.properties";
    private static final String ECHARTS_BUNDLE = "/META-INF/resources/webjars/echarts/%s/dist/echarts.min.js";

    private HtmlPages() {
    }

    /** Writes a rendered page to {@code file} in UTF-8; an UncheckedIOException names {@code what} and the file. */
    public static void write(Path file, String html, String what) {
        try {
            Files.writeString(file, html, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the " + what + " to " + file, e);
        }
    }

    /** Escapes text for HTML element content and quoted attribute values. */
    public static String esc(String s) {
        if (s == null) {
            return "";
        }
        StringBuilder out = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> out.append(c);
            }
        }
        return out.toString();
    }

    /**
     * Makes JSON safe inside a {@code <script>} element: no {@code </script>} or {@code <!--} can end
     * or change it. In JSON, '<', '>' and '&' only occur inside strings, where their \\u escapes mean the same.
     */
    public static String scriptSafe(String json) {
        return json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029");
    }

    /** JavaScript to inline as is: it must hold nothing that ends or changes a {@code <script>} element. */
    public static String inlineable(String code, String what) {
        String lower = code.toLowerCase(Locale.ROOT);
        if (lower.contains("</script") || lower.contains("<!--") || lower.contains("<script")) {
            throw new IllegalStateException(what + " cannot be inlined into a <script> element as it is");
        }
        return code;
    }

    /** The version of the ECharts jar on the class path. */
    public static String echartsVersion() {
        try (InputStream in = HtmlPages.class.getResourceAsStream(ECHARTS_POM)) {
            if (in == null) {
                throw new IllegalStateException("Apache ECharts is not on the class path (" + ECHARTS_POM
                        + "): HTML reports need the jar org.webjars.npm:echarts next to psg4j's (lib/ of the "
                        + "distribution)");
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + ECHARTS_POM, e);
        }
    }

    /** ECharts' self-contained bundle ({@code dist/echarts.min.js}), checked inlineable. */
    public static String echartsScript() {
        String path = String.format(ECHARTS_BUNDLE, echartsVersion());
        try (InputStream in = HtmlPages.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("the ECharts jar on the class path has no " + path);
            }
            return inlineable(new String(in.readAllBytes(), StandardCharsets.UTF_8), "echarts.min.js");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    /** A text resource next to {@code owner}'s class file (e.g. a page's CSS or script). */
    public static String resource(Class<?> owner, String name) {
        String where = owner.getPackageName().replace('.', '/') + "/" + name;
        try (InputStream in = owner.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("psg4j's jar lacks " + where);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + where, e);
        }
    }
}
