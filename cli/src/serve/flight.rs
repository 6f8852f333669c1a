//! Arrow Flight SQL on `cairn serve`'s port: read-only SQL over the
//! committed assets, the sources and the `cairn.*` metadata tables, and
//! catalog browsing, for ADBC, JDBC and ODBC clients (DBeaver, pandas, BI
//! tools).
//!
//! Every request opens the project afresh, like the `cairn.v1.Cairn`
//! methods, and answers through the engine's facade: SQL goes to
//! [`Workspace::query`], which also refuses anything that is not a
//! read-only query (DDL, DML, `COPY`, `SET`) with the same message
//! `cairn query` gives. The server keeps no state between calls: a
//! statement's ticket and a prepared statement's handle are the SQL text
//! itself, so a client may fetch on any connection and closing a prepared
//! statement frees nothing.
//!
//! The names clients browse are the ones the SQL resolves: DataFusion's
//! default catalog, its default schema holding the sources and the
//! materialized assets, and the `cairn` schema of metadata tables. A table
//! is listed only when a query of it would work (an asset that was never
//! materialized is not).

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    SqlSupportedTransaction, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, LimitClause, Statement, Value};
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use cairn_engine::Workspace;

use super::{Api, engine_status};

use cairn_engine::{METADATA_SCHEMA, METADATA_TABLES};

/// The one table type reported: every name reads as a table.
const TABLE_TYPE: &str = "TABLE";

/// What `do_get` answers with.
type FlightDataStream = <FlightSql as FlightService>::DoGetStream;

/// The Flight SQL service for one project.
#[derive(Clone)]
pub(super) struct FlightSql {
    api: Api,
}

/// The Flight SQL service (`arrow.flight.protocol.FlightService`) over
/// the project `api` serves, to be served beside `cairn.v1.Cairn`.
pub(super) fn service(api: Api) -> FlightServiceServer<FlightSql> {
    FlightServiceServer::new(FlightSql { api })
}

/// DataFusion's default catalog and schema: where `Workspace::query`'s
/// sessions put sources and assets (they use the default configuration).
fn default_names() -> (String, String) {
    let config = SessionConfig::new();
    let catalog = &config.options().catalog;
    (
        catalog.default_catalog.clone(),
        catalog.default_schema.clone(),
    )
}

/// A failure that is nobody's input: a bug or the environment.
fn internal(what: &str, e: impl std::fmt::Display) -> Status {
    Status::internal(format!("{what}: {e}"))
}

/// The SQL a statement or prepared-statement handle carries.
fn handle_sql(handle: &[u8]) -> Result<String, Status> {
    String::from_utf8(handle.to_vec()).map_err(|_| {
        Status::invalid_argument(
            "this handle was not issued by cairn serve (it is not UTF-8 SQL); prepare the statement again",
        )
    })
}

/// Anything that would write is refused the same way.
fn read_only(what: &str) -> Status {
    Status::invalid_argument(format!(
        "cairn serve's Flight SQL is read-only: {what} is refused; send queries (SELECT) and change data with `cairn materialize`"
    ))
}

/// A cheap SQL with the same result schema as `sql`: one plain query with
/// its `LIMIT` set to 0, which plans (and registers the tables it reads)
/// without scanning anything. `None` for anything else (several
/// statements, `EXPLAIN`, `SHOW`, DDL...), which runs as sent.
fn schema_probe(sql: &str) -> Option<String> {
    let mut statements = DFParser::parse_sql(sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    let DfStatement::Statement(statement) = statements.pop_front()? else {
        return None;
    };
    let Statement::Query(mut query) = *statement else {
        return None;
    };
    query.limit_clause = Some(LimitClause::LimitOffset {
        limit: Some(Expr::value(Value::Number("0".to_owned(), false))),
        offset: None,
        limit_by: Vec::new(),
    });
    query.fetch = None;
    Some(query.to_string())
}

/// `data_type` with the string and binary view types (DataFusion's
/// default for strings read from Parquet) replaced by plain UTF-8 and
/// binary: the Flight SQL JDBC driver that DBeaver and BI tools ship
/// rejects a result with `Unsupported ArrowType Utf8View`
/// (apache/arrow-java#807), and the values are the same.
fn portable_type(data_type: &DataType) -> DataType {
    let field = |f: &FieldRef| -> FieldRef {
        Arc::new(
            f.as_ref()
                .clone()
                .with_data_type(portable_type(f.data_type())),
        )
    };
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        DataType::Dictionary(key, value) => {
            DataType::Dictionary(key.clone(), Box::new(portable_type(value)))
        }
        other => other.clone(),
    }
}

/// `schema` with [`portable_type`]s.
fn portable_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_data_type(portable_type(f.data_type()))
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` cast to `schema` (its [`portable_schema`]).
fn portable_batch(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The schema clients see for results of `schema`: [`portable_schema`],
/// with dictionary columns as their value type, as the encoder sends
/// them (the schema announced in a `FlightInfo` must be the one sent).
fn wire_schema(schema: &Schema) -> SchemaRef {
    let portable = portable_schema(schema);
    FlightDataEncoderBuilder::new()
        .with_schema(Arc::clone(&portable))
        .build(futures::stream::empty())
        .known_schema()
        .unwrap_or(portable)
}

/// A `FlightInfo` with `schema` and one endpoint carrying `ticket` and no
/// location, so clients fetch on the connection they have.
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| internal("encoding the result schema", e))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// `batches` as a Flight data stream announcing `schema` first (so an empty
/// result still tells its columns), in [`portable_schema`] types.
fn stream(schema: &Schema, batches: Vec<RecordBatch>) -> Response<FlightDataStream> {
    let schema = portable_schema(schema);
    let batches = {
        let schema = Arc::clone(&schema);
        batches
            .into_iter()
            .map(move |b| portable_batch(b, &schema).map_err(FlightError::from))
    };
    let data = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter(batches))
        .map_err(Status::from);
    Response::new(Box::pin(data))
}

/// One batch built by an arrow-flight metadata builder, as a stream.
fn one_batch(
    schema: SchemaRef,
    batch: Result<RecordBatch, impl std::fmt::Display>,
) -> Result<Response<FlightDataStream>, Status> {
    let batch = batch.map_err(|e| internal("building the metadata reply", e))?;
    Ok(stream(&schema, vec![batch]))
}

/// What `GetSqlInfo` reports: who this is and that it only reads.
fn sql_info() -> Result<SqlInfoData, Status> {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "cairn");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.build().map_err(|e| internal("building SQL info", e))
}

/// A SQL identifier in double quotes.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl FlightSql {
    /// Runs `sql` through the engine: its schema and rows, or the error
    /// `cairn query` would print.
    async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        let ws = self.api.workspace().await?;
        ws.query(sql).await.map_err(engine_status)
    }

    /// The schema `sql`'s results will have, without computing them when
    /// the SQL is a plain query; else (and when the cheap plan fails) the
    /// SQL runs as sent, so errors are exactly those of running it.
    async fn result_schema(&self, sql: &str) -> Result<SchemaRef, Status> {
        let ws = self.api.workspace().await?;
        if let Some(probe) = schema_probe(sql)
            && let Ok((schema, _)) = ws.query(&probe).await
        {
            return Ok(wire_schema(&schema));
        }
        let (schema, _) = ws.query(sql).await.map_err(engine_status)?;
        Ok(wire_schema(&schema))
    }

    /// The schema of `schema.table`, or `None` when it cannot be read now
    /// (an asset never materialized, a source whose file is missing).
    async fn table_schema(
        ws: &Workspace,
        schema: &str,
        table: &str,
    ) -> Result<Option<SchemaRef>, Status> {
        let sql = format!("select * from {}.{} limit 0", quoted(schema), quoted(table));
        match ws.query(&sql).await {
            Ok((schema, _)) => Ok(Some(wire_schema(&schema))),
            Err(e) if e.is_user_error() => Ok(None),
            Err(e) => Err(engine_status(e)),
        }
    }

    /// The `GetTables` reply: every readable table the filters of `query`
    /// keep, with its schema when asked.
    async fn tables(&self, query: CommandGetTables) -> Result<Response<FlightDataStream>, Status> {
        let ws = self.api.workspace().await?;
        let (catalog, default_schema) = default_names();
        let mut candidates: Vec<(&str, &str)> = Vec::new();
        let project = ws.project();
        let mut data: BTreeSet<&str> = project.sources.keys().map(String::as_str).collect();
        data.extend(project.assets.keys().map(String::as_str));
        candidates.extend(data.into_iter().map(|t| (default_schema.as_str(), t)));
        candidates.extend(METADATA_TABLES.iter().map(|t| (METADATA_SCHEMA, *t)));

        // The builder applies the client's catalog, schema, name and type
        // filters; a first pass without schemas says which tables are kept,
        // so only those are opened.
        let mut names = CommandGetTables {
            include_schema: false,
            ..query.clone()
        }
        .into_builder();
        for (schema, table) in &candidates {
            names
                .append(&catalog, schema, table, TABLE_TYPE, &Schema::empty())
                .map_err(|e| internal("listing tables", e))?;
        }
        let kept = names.build().map_err(|e| internal("listing tables", e))?;
        let column = |name: &str| -> Result<StringArray, Status> {
            kept.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .cloned()
                .ok_or_else(|| internal("listing tables", format!("no text column {name}")))
        };
        let (schemas, tables) = (column("db_schema_name")?, column("table_name")?);

        let mut builder = query.into_builder();
        for i in 0..kept.num_rows() {
            let (schema, table) = (schemas.value(i), tables.value(i));
            if let Some(table_schema) = Self::table_schema(&ws, schema, table).await? {
                builder
                    .append(&catalog, schema, table, TABLE_TYPE, &table_schema)
                    .map_err(|e| internal("listing tables", e))?;
            }
        }
        one_batch(builder.schema(), builder.build())
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    /// No authentication here (a layer in front of every service checks
    /// tokens): an empty handshake is answered with an empty payload.
    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(reply)]))))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = self.result_schema(&query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let sql = handle_sql(&ticket.statement_handle)?;
        let (schema, batches) = self.query(&sql).await?;
        Ok(stream(&schema, batches))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let schema = self.result_schema(&query.query).await?;
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e| internal("encoding the result schema", e))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: query.query.into_bytes().into(),
            dataset_schema,
            parameter_schema: Default::default(),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let sql = handle_sql(&cmd.prepared_statement_handle)?;
        let schema = self.result_schema(&sql).await?;
        flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let sql = handle_sql(&cmd.prepared_statement_handle)?;
        let (schema, batches) = self.query(&sql).await?;
        Ok(stream(&schema, batches))
    }

    /// Nothing to free: the handle is the SQL.
    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        _query: CommandPreparedStatementQuery,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        Err(Status::invalid_argument(
            "query parameters are not supported: write the values into the SQL text",
        ))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("an update statement"))
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("an update statement"))
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("bulk ingestion"))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(default_names().0);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let (catalog, schema) = default_names();
        let mut builder = query.into_builder();
        builder.append(&catalog, &schema);
        builder.append(&catalog, METADATA_SCHEMA);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        self.tables(query).await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(TABLE_TYPE);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = sql_info()?;
        let schema = query.clone().into_builder(&info).schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<FlightDataStream>, Status> {
        let info = sql_info()?;
        let builder = query.into_builder(&info);
        one_batch(builder.schema(), builder.build())
    }

    /// The reported SQL info is fixed ([`sql_info`]); nothing to register.
    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn a_plain_query_is_probed_with_limit_zero() {
        let probe = |sql: &str| schema_probe(sql);
        assert_eq!(
            probe("select a from t order by a limit 10 offset 5").as_deref(),
            Some("SELECT a FROM t ORDER BY a LIMIT 0")
        );
        assert_eq!(
            probe("with x as (select 1 as a) select * from x union all select 2").as_deref(),
            Some("WITH x AS (SELECT 1 AS a) SELECT * FROM x UNION ALL SELECT 2 LIMIT 0")
        );
        assert_eq!(probe("create table x as select 1"), None);
        assert_eq!(probe("explain select 1"), None);
        assert_eq!(probe("select 1; select 2"), None);
        assert_eq!(probe("selec 1"), None);
    }

    #[test]
    fn view_types_travel_as_plain_strings_and_bytes() {
        use datafusion::arrow::array::{ArrayRef, Int64Array, StringViewArray};
        let item = Arc::new(Field::new("item", DataType::BinaryView, true));
        let schema = Schema::new(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("l", DataType::List(item), true),
            Field::new("n", DataType::Int64, false),
        ]);
        let portable = portable_schema(&schema);
        let types: Vec<String> = portable
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert_eq!(types, ["Utf8", "List(Binary)", "Int64"]);
        assert_eq!(wire_schema(&schema), portable);

        let views = Schema::new(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![Some("a"), None])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ];
        let batch = RecordBatch::try_new(Arc::new(views.clone()), columns).unwrap();
        let target = portable_schema(&views);
        let out = portable_batch(batch, &target).unwrap();
        assert_eq!(out.schema(), target);
        let strings = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            strings.iter().collect::<Vec<_>>(),
            [Some("a"), None],
            "values and nulls kept"
        );
    }

    #[test]
    fn the_names_are_datafusions_defaults() {
        assert_eq!(
            default_names(),
            ("datafusion".to_owned(), "public".to_owned())
        );
    }
}
