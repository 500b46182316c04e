package com.bankcdc.probe;

import com.clickhouse.client.api.Client;
import com.clickhouse.client.api.ServerException;
import com.clickhouse.client.api.data_formats.ClickHouseBinaryFormatReader;
import com.clickhouse.client.api.insert.InsertResponse;
import com.clickhouse.client.api.metadata.TableSchema;
import com.clickhouse.client.api.query.GenericRecord;
import com.clickhouse.client.api.query.QueryResponse;
import com.clickhouse.data.ClickHouseColumn;
import com.clickhouse.data.ClickHouseFormat;

import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Drives a ClickHouse HTTP endpoint the way JVM users do: through ClickHouse's official
 * Java client (client-v2, which the ClickHouse Kafka Connect sink runs) and its JDBC driver.
 *
 * <pre>java -jar clickhouse-probe.jar URL USER PASSWORD DATABASE CASE|all</pre>
 *
 * Prints one JSON line per case: {"case": ..., "ok": true|false, "detail": ...}. Exits 0 when
 * every case that ran was ok, 1 when one was not, 2 on bad arguments.
 */
public final class ClickHouseProbe {

    /** A case failed; its message is the detail. */
    static final class CheckFailed extends RuntimeException {
        CheckFailed(String message) {
            super(message);
        }
    }

    @FunctionalInterface
    interface Case {
        String run() throws Exception;
    }

    private final String url;
    private final String user;
    private final String password;
    private final String database;

    private ClickHouseProbe(String url, String user, String password, String database) {
        this.url = url;
        this.user = user;
        this.password = password;
        this.database = database;
    }

    /** A client as an application builds one: endpoint, credentials, default database, else defaults. */
    private Client client() {
        return new Client.Builder()
                .addEndpoint(url)
                .setUsername(user)
                .setPassword(password)
                .setDefaultDatabase(database)
                .setConnectTimeout(10, ChronoUnit.SECONDS)
                .setSocketTimeout(60, ChronoUnit.SECONDS)
                .build();
    }

    private Map<String, Case> cases() {
        Map<String, Case> cases = new LinkedHashMap<>();
        cases.put("ping", this::ping);
        cases.put("schema_lookup", this::schemaLookup);
        cases.put("insert_and_query", this::insertAndQuery);
        cases.put("multi_block_read", this::multiBlockRead);
        cases.put("current_database", this::currentDatabase);
        cases.put("server_error", this::serverError);
        cases.put("jdbc_query", this::jdbcQuery);
        return cases;
    }

    // ---- cases ----------------------------------------------------------------------------

    private String ping() {
        try (Client client = client()) {
            check(client.ping(), "client.ping() returned false");
            return "ping ok";
        }
    }

    private static final String TYPED_COLUMNS =
            "id UInt32, name String, amount Decimal(18, 2), ts DateTime64(3, 'UTC'), tags Array(String), note Nullable(String)";
    private static final List<String> TYPED_NAMES = List.of("id", "name", "amount", "ts", "tags", "note");
    private static final List<String> TYPED_TYPES =
            List.of("UInt32", "String", "Decimal(18, 2)", "DateTime64(3, 'UTC')", "Array(String)", "Nullable(String)");

    private void createTypedTable(Client client, String table) throws Exception {
        // qualified here, so that only the client's own lookups depend on its default database
        client.execute("CREATE TABLE " + quote(database) + "." + quote(table) + " (" + TYPED_COLUMNS
                + ") ENGINE = MergeTree ORDER BY id").get(60, TimeUnit.SECONDS).close();
    }

    private String schemaLookup() throws Exception {
        String table = "jvm_schema";
        try (Client client = client()) {
            createTypedTable(client, table);
            TableSchema schema = client.getTableSchema(table);
            List<String> names = new ArrayList<>();
            List<String> types = new ArrayList<>();
            for (ClickHouseColumn col : schema.getColumns()) {
                names.add(col.getColumnName());
                types.add(col.getOriginalTypeName());
            }
            checkEq(TYPED_NAMES, names, "column names");
            checkEq(TYPED_TYPES, types, "column types");
            checkEq(table, schema.getTableName(), "schema.getTableName()");
            checkEq(database, schema.getDatabaseName(), "schema.getDatabaseName()");
            check(schema.getColumnByName("note").isNullable(), "note is not reported Nullable");
            return "columns " + names + " types " + types;
        }
    }

    /** A row as the POJO insert path sees it (getters matched to columns by name). */
    public static final class TypedRow {
        private long id;
        private String name;
        private BigDecimal amount;
        private Instant ts;
        private List<String> tags;
        private String note;

        public TypedRow() {
        }

        TypedRow(long id, String name, BigDecimal amount, Instant ts, List<String> tags, String note) {
            this.id = id;
            this.name = name;
            this.amount = amount;
            this.ts = ts;
            this.tags = tags;
            this.note = note;
        }

        public long getId() { return id; }
        public void setId(long id) { this.id = id; }
        public String getName() { return name; }
        public void setName(String name) { this.name = name; }
        public BigDecimal getAmount() { return amount; }
        public void setAmount(BigDecimal amount) { this.amount = amount; }
        public Instant getTs() { return ts; }
        public void setTs(Instant ts) { this.ts = ts; }
        public List<String> getTags() { return tags; }
        public void setTags(List<String> tags) { this.tags = tags; }
        public String getNote() { return note; }
        public void setNote(String note) { this.note = note; }

        @Override
        public String toString() {
            return "(" + id + ", " + name + ", " + amount + ", " + ts + ", " + tags + ", " + note + ")";
        }
    }

    private static final List<TypedRow> EXPECTED_ROWS = List.of(
            new TypedRow(1, "alice", new BigDecimal("10.50"), Instant.parse("2024-01-02T03:04:05.678Z"), List.of("a", "b"), null),
            new TypedRow(2, "bob \"quoted\" \\ ünïcode", new BigDecimal("-0.01"), Instant.parse("1999-12-31T23:59:59.999Z"), List.of(), "n2"),
            new TypedRow(3, "carol", new BigDecimal("1234567890123456.78"), Instant.parse("2030-06-15T12:00:00Z"), List.of("x"), "pojo"));

    private String insertAndQuery() throws Exception {
        String table = "jvm_rows";
        try (Client client = client()) {
            createTypedTable(client, table);
            // rows 1-2 as a JSONEachRow stream (what an application with ready-made JSON sends)
            String json = "{\"id\":1,\"name\":\"alice\",\"amount\":\"10.50\",\"ts\":\"2024-01-02 03:04:05.678\",\"tags\":[\"a\",\"b\"],\"note\":null}\n"
                    + "{\"id\":2,\"name\":\"bob \\\"quoted\\\" \\\\ ünïcode\",\"amount\":\"-0.01\",\"ts\":\"1999-12-31 23:59:59.999\",\"tags\":[],\"note\":\"n2\"}\n";
            try (InsertResponse resp = client.insert(table, new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)),
                    ClickHouseFormat.JSONEachRow).get(60, TimeUnit.SECONDS)) {
                checkEq(2L, resp.getWrittenRows(), "written rows of the JSONEachRow insert");
            }
            // row 3 as a POJO (the client serialises it as RowBinary from the looked-up schema)
            client.register(TypedRow.class, client.getTableSchema(table));
            try (InsertResponse resp = client.insert(table, List.of(EXPECTED_ROWS.get(2))).get(60, TimeUnit.SECONDS)) {
                checkEq(1L, resp.getWrittenRows(), "written rows of the POJO insert");
            }

            String sql = "SELECT id, name, amount, ts, tags, note FROM " + table + " ORDER BY id";
            List<GenericRecord> records = client.queryAll(sql);
            List<String> fromQueryAll = new ArrayList<>();
            for (GenericRecord r : records) {
                fromQueryAll.add(new TypedRow(r.getLong("id"), r.getString("name"), r.getBigDecimal("amount"), r.getInstant("ts"),
                        r.getList("tags"), r.hasValue("note") ? r.getString("note") : null).toString());
            }
            checkEq(asStrings(EXPECTED_ROWS), fromQueryAll, "rows from queryAll");

            List<String> fromReader = new ArrayList<>();
            try (QueryResponse resp = client.query(sql).get(60, TimeUnit.SECONDS)) {
                checkEq(ClickHouseFormat.RowBinaryWithNamesAndTypes, resp.getFormat(), "response format");
                ClickHouseBinaryFormatReader reader = client.newBinaryFormatReader(resp);
                checkEq(TYPED_NAMES, columnNames(reader.getSchema()), "reader column names");
                while (reader.hasNext()) {
                    reader.next();
                    fromReader.add(new TypedRow(reader.getLong("id"), reader.getString("name"), reader.getBigDecimal("amount"),
                            reader.getInstant("ts"), reader.getList("tags"), reader.hasValue("note") ? reader.getString("note") : null)
                            .toString());
                }
            }
            checkEq(asStrings(EXPECTED_ROWS), fromReader, "rows from the binary reader");
            return fromReader.size() + " rows match";
        }
    }

    private String multiBlockRead() throws Exception {
        long rows = 100_000;
        String sql = "SELECT number, toString(number) AS s FROM numbers(" + rows + ") SETTINGS max_block_size = 1000";
        try (Client client = client(); QueryResponse resp = client.query(sql).get(120, TimeUnit.SECONDS)) {
            ClickHouseBinaryFormatReader reader = client.newBinaryFormatReader(resp);
            checkEq(List.of("number", "s"), columnNames(reader.getSchema()), "column names");
            long count = 0;
            long sum = 0;
            while (reader.hasNext()) {
                reader.next();
                long n = reader.getLong("number");
                String s = reader.getString("s");
                if (n != count || !s.equals(Long.toString(n))) {
                    throw new CheckFailed("row " + count + " read as (" + n + ", '" + s + "')");
                }
                sum += n;
                count++;
            }
            checkEq(rows, count, "row count");
            checkEq(rows * (rows - 1) / 2, sum, "sum(number)");
            return count + " rows, sum " + sum;
        }
    }

    private String currentDatabase() {
        try (Client client = client()) {
            List<GenericRecord> records = client.queryAll("SELECT currentDatabase() AS db");
            checkEq(1, records.size(), "row count");
            checkEq(database, records.get(0).getString("db"), "currentDatabase()");
            return "currentDatabase() = " + records.get(0).getString("db");
        }
    }

    private String serverError() throws Exception {
        String table = "jvm_no_such_table";
        try (Client client = client()) {
            try {
                client.query("SELECT * FROM " + table).get(60, TimeUnit.SECONDS).close();
            } catch (Exception e) {
                Throwable cause = unwrap(e);
                if (!(cause instanceof ServerException)) {
                    throw new CheckFailed("expected ServerException, got " + stackTrace(cause));
                }
                ServerException se = (ServerException) cause;
                checkEq(60, se.getCode(), "error code (" + se.getMessage() + ")");
                check(se.getMessage().contains(table), "message does not name the table: " + se.getMessage());
                return "code " + se.getCode() + ", HTTP " + se.getTransportProtocolCode() + ": " + firstLine(se.getMessage());
            }
            throw new CheckFailed("SELECT from a missing table did not fail");
        }
    }

    private String jdbcQuery() throws Exception {
        String jdbcUrl = "jdbc:clickhouse:" + url + "/" + database;
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        // jdbc-v2 0.10.0 does not register itself with DriverManager when loaded; connect through the driver
        try (Connection conn = new com.clickhouse.jdbc.Driver().connect(jdbcUrl, props); Statement st = conn.createStatement()) {
            st.execute("CREATE TABLE jdbc_t (k UInt32, v String) ENGINE = MergeTree ORDER BY k");
            st.execute("INSERT INTO jdbc_t VALUES (1, 'one'), (2, 'two')");
            List<String> rows = new ArrayList<>();
            try (ResultSet rs = st.executeQuery("SELECT currentDatabase() AS db, k, v FROM jdbc_t ORDER BY k")) {
                while (rs.next()) {
                    rows.add(rs.getString("db") + "/" + rs.getLong("k") + "/" + rs.getString("v"));
                }
            }
            checkEq(List.of(database + "/1/one", database + "/2/two"), rows, "rows through JDBC");
            return "rows " + rows;
        }
    }

    // ---- helpers --------------------------------------------------------------------------

    private static List<String> columnNames(TableSchema schema) {
        List<String> names = new ArrayList<>();
        for (ClickHouseColumn col : schema.getColumns()) {
            names.add(col.getColumnName());
        }
        return names;
    }

    private static List<String> asStrings(List<?> items) {
        List<String> out = new ArrayList<>();
        for (Object o : items) {
            out.add(String.valueOf(o));
        }
        return out;
    }

    private static String quote(String identifier) {
        return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`";
    }

    private static void check(boolean condition, String message) {
        if (!condition) {
            throw new CheckFailed(message);
        }
    }

    private static void checkEq(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new CheckFailed(what + ": expected " + expected + ", got " + actual);
        }
    }

    private static Throwable unwrap(Throwable e) {
        while ((e instanceof ExecutionException || e instanceof CompletionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    private static String firstLine(String s) {
        int nl = s == null ? -1 : s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private static String stackTrace(Throwable t) {
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        String s = sw.toString();
        return s.length() > 4000 ? s.substring(0, 4000) + "..." : s;
    }

    /** A JSON string literal. */
    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20 || c > 0x7e) { // ASCII only: stdout's charset is the locale's
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }

    private static boolean report(String name, Case c) {
        boolean ok;
        String detail;
        try {
            detail = c.run();
            ok = true;
        } catch (CheckFailed e) {
            ok = false;
            detail = e.getMessage();
        } catch (Throwable e) {
            ok = false;
            detail = stackTrace(unwrap(e));
        }
        System.out.println("{\"case\":" + json(name) + ",\"ok\":" + ok + ",\"detail\":" + json(String.valueOf(detail)) + "}");
        System.out.flush();
        return ok;
    }

    public static void main(String[] args) {
        if (args.length != 5) {
            System.err.println("usage: ClickHouseProbe URL USER PASSWORD DATABASE CASE|all");
            System.exit(2);
        }
        ClickHouseProbe probe = new ClickHouseProbe(args[0].replaceAll("/+$", ""), args[1], args[2], args[3]);
        Map<String, Case> cases = probe.cases();
        List<String> names = args[4].equals("all") ? new ArrayList<>(cases.keySet()) : Arrays.asList(args[4].split(","));
        boolean allOk = true;
        for (String name : names) {
            Case c = cases.get(name);
            if (c == null) {
                System.err.println("unknown case " + name + "; known: " + cases.keySet());
                System.exit(2);
            }
            allOk &= report(name, c);
        }
        System.exit(allOk ? 0 : 1);
    }
}
