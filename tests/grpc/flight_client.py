"""A real Arrow Flight SQL client (ADBC: adbc-driver-flightsql through
adbc-driver-manager, with pyarrow) for `cairn serve`, used by the e2e tests.

Usage: flight_client.py ADDR MODE [SQL]
  MODE query SQL     runs SQL as a plain statement (GetFlightInfo with
                     CommandStatementQuery, then DoGet)
  MODE prepared SQL  runs SQL the way DB-API's cursor.execute does, which
                     prepares it first (ActionCreatePreparedStatement, then
                     GetFlightInfo and DoGet of the prepared statement)
  MODE update SQL    sends SQL as an update (ExecuteUpdate / DoPut)
  MODE objects       the server's info (GetSqlInfo) and everything
                     adbc_get_objects lists (GetCatalogs, GetDbSchemas,
                     GetTables with schemas), plus GetTableTypes
  With CAIRN_GRPC_TOKEN set, every call sends `authorization: Bearer $CAIRN_GRPC_TOKEN`.

Prints one JSON object: for a query {"columns": [...], "types": [...],
"rows": [{column: value}, ...]} (dates and times in ISO 8601, decimals as
strings, bytes as hex, lists as arrays); for an error {"error": CLASS,
"status": ADBC status code name, "message": ...}.
"""
import base64, datetime, decimal, json, os, sys

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pyarrow


def plain(value):
    """A JSON value for a Python value pyarrow gives."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def table_json(table):
    return {
        "columns": table.column_names,
        "types": [str(t) for t in table.schema.types],
        "rows": [{k: plain(v) for k, v in row.items()} for row in table.to_pylist()],
    }


def objects(conn):
    info = conn.adbc_get_info()
    catalogs = []
    for catalog in conn.adbc_get_objects(depth="all").read_all().to_pylist():
        schemas = []
        for schema in catalog["catalog_db_schemas"] or []:
            tables = [
                {
                    "name": t["table_name"],
                    "type": t["table_type"],
                    "columns": [c["column_name"] for c in sorted(
                        t["table_columns"] or [], key=lambda c: c["ordinal_position"] or 0)],
                }
                for t in schema["db_schema_tables"] or []
            ]
            schemas.append({"name": schema["db_schema_name"],
                            "tables": sorted(tables, key=lambda t: t["name"])})
        catalogs.append({"name": catalog["catalog_name"],
                         "schemas": sorted(schemas, key=lambda s: s["name"])})
    return {
        "info": {k: plain(v) for k, v in info.items()
                 if k in ("vendor_name", "vendor_version")},
        "catalogs": catalogs,
        "table_types": conn.adbc_get_table_types(),
    }


def main():
    addr, mode = sys.argv[1], sys.argv[2]
    sql = sys.argv[3] if len(sys.argv) > 3 else None
    token = os.environ.get("CAIRN_GRPC_TOKEN")
    db_kwargs = {}
    if token is not None:
        db_kwargs["adbc.flight.sql.authorization_header"] = "Bearer " + token
    try:
        # autocommit: the server has no transactions (it only reads).
        with flightsql.connect(f"grpc://{addr}", db_kwargs=db_kwargs, autocommit=True) as conn:
            if mode == "objects":
                out = objects(conn)
            else:
                with conn.cursor() as cur:
                    if mode == "query":
                        # DB-API's execute always prepares: use the statement.
                        stmt = cur.adbc_statement
                        stmt.set_sql_query(sql)
                        handle, _ = stmt.execute_query()
                        out = table_json(
                            pyarrow.RecordBatchReader._import_from_c(handle.address).read_all())
                    elif mode == "prepared":
                        cur.execute(sql)
                        out = table_json(cur.fetch_arrow_table())
                    elif mode == "update":
                        cur.adbc_statement.set_sql_query(sql)
                        out = {"rows_affected": cur.adbc_statement.execute_update()}
                    else:
                        sys.exit(f"unknown mode {mode!r}")
    except adbc_driver_manager.Error as e:
        out = {
            "error": type(e).__name__,
            "status": e.status_code.name if e.status_code is not None else None,
            "message": str(e),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
