//! The few driver capabilities the shared SQL uses, named once.
//!
//! Code generic over a sqlx database would otherwise repeat a dozen
//! `for<'q> i64: Encode<'q, DB> + ...` bounds on every function (Rust does
//! not imply such bounds from a trait). Here they are written once, on the
//! blanket impl of [`SqlDb`], and the shared code sees a closed set of
//! value types ([`Param`], [`Column`]) and a statement type ([`Sql`]) that
//! runs on a connection and answers in [`StorageError`]s.

use futures::future::BoxFuture;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row, Type,
};

use crate::model::StorageError;

/// What differs between sqlx drivers beyond types: implemented for
/// `sqlx::Sqlite` and `sqlx::Postgres` beside their dialects. It sits on
/// the driver's type rather than on [`super::Dialect`] so that [`Sql`],
/// which knows only the driver, answers in classified errors.
pub trait Driver: Database {
    /// Translates a driver error into an outage or a failure (the tables of
    /// `storage/errors.rs`).
    fn classify(e: sqlx::Error) -> StorageError;

    /// Rows an `INSERT`, `UPDATE` or `DELETE` touched.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// A sqlx database the shared SQL runs on.
pub trait SqlDb: Driver {
    /// Binds an integer.
    fn bind_i64(qb: &mut QueryBuilder<Self>, v: Option<i64>);
    /// Binds text.
    fn bind_text(qb: &mut QueryBuilder<Self>, v: Option<&str>);
    /// Binds bytes.
    fn bind_bytes(qb: &mut QueryBuilder<Self>, v: &[u8]);
    /// Column `i` as an integer (`None` for NULL).
    fn get_i64(row: &Self::Row, i: usize) -> Result<Option<i64>, sqlx::Error>;
    /// Column `i` as text (`None` for NULL).
    fn get_text(row: &Self::Row, i: usize) -> Result<Option<String>, sqlx::Error>;
    /// Column `i` as borrowed text, to parse without a copy.
    fn get_str(row: &Self::Row, i: usize) -> Result<&str, sqlx::Error>;
    /// Column `i` as bytes.
    fn get_bytes(row: &Self::Row, i: usize) -> Result<Vec<u8>, sqlx::Error>;
    /// Runs a built statement, returning its rows.
    fn fetch_all<'c>(
        conn: &'c mut Self::Connection,
        qb: &'c mut QueryBuilder<Self>,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>>;
    /// Runs a built statement, returning the rows it touched.
    fn execute<'c>(
        conn: &'c mut Self::Connection,
        qb: &'c mut QueryBuilder<Self>,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>>;
    /// Runs a statement without parameters through the simple protocol
    /// (`BEGIN`, `COMMIT`, `ROLLBACK`).
    fn raw<'c>(
        conn: &'c mut Self::Connection,
        sql: &'static str,
    ) -> BoxFuture<'c, Result<(), sqlx::Error>>;
}

impl<DB> SqlDb for DB
where
    DB: Driver,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Vec<u8>: Decode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn bind_i64(qb: &mut QueryBuilder<Self>, v: Option<i64>) {
        qb.push_bind(v);
    }
    fn bind_text(qb: &mut QueryBuilder<Self>, v: Option<&str>) {
        qb.push_bind(v);
    }
    fn bind_bytes(qb: &mut QueryBuilder<Self>, v: &[u8]) {
        qb.push_bind(v);
    }
    fn get_i64(row: &Self::Row, i: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(i)
    }
    fn get_text(row: &Self::Row, i: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get(i)
    }
    fn get_str(row: &Self::Row, i: usize) -> Result<&str, sqlx::Error> {
        row.try_get(i)
    }
    fn get_bytes(row: &Self::Row, i: usize) -> Result<Vec<u8>, sqlx::Error> {
        row.try_get(i)
    }
    fn fetch_all<'c>(
        conn: &'c mut Self::Connection,
        qb: &'c mut QueryBuilder<Self>,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>> {
        conn.fetch_all(qb.build())
    }
    fn execute<'c>(
        conn: &'c mut Self::Connection,
        qb: &'c mut QueryBuilder<Self>,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let result = conn.execute(qb.build()).await?;
            Ok(DB::rows_affected(&result))
        })
    }
    fn raw<'c>(
        conn: &'c mut Self::Connection,
        sql: &'static str,
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            conn.execute(sqlx::raw_sql(sql)).await?;
            Ok(())
        })
    }
}

/// A value the shared SQL binds.
pub trait Param {
    /// Binds `self` as the next parameter of `qb`.
    fn bind_to<DB: SqlDb>(self, qb: &mut QueryBuilder<DB>);
    /// `self` as a value of its own, for a statement run outside sqlx
    /// (see [`Sql::recording`]).
    fn value(&self) -> Value;
}

/// A bound value, kept by a recording [`Sql`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer or NULL.
    Int(Option<i64>),
    /// Text or NULL.
    Text(Option<String>),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Param for i64 {
    fn bind_to<DB: SqlDb>(self, qb: &mut QueryBuilder<DB>) {
        DB::bind_i64(qb, Some(self));
    }
    fn value(&self) -> Value {
        Value::Int(Some(*self))
    }
}
impl Param for Option<i64> {
    fn bind_to<DB: SqlDb>(self, qb: &mut QueryBuilder<DB>) {
        DB::bind_i64(qb, self);
    }
    fn value(&self) -> Value {
        Value::Int(*self)
    }
}
impl Param for &str {
    fn bind_to<DB: SqlDb>(self, qb: &mut QueryBuilder<DB>) {
        DB::bind_text(qb, Some(self));
    }
    fn value(&self) -> Value {
        Value::Text(Some((*self).to_owned()))
    }
}
impl Param for Option<&str> {
    fn bind_to<DB: SqlDb>(self, qb: &mut QueryBuilder<DB>) {
        DB::bind_text(qb, self);
    }
    fn value(&self) -> Value {
        Value::Text(self.map(str::to_owned))
    }
}
impl Param for &[u8] {
    fn bind_to<DB: SqlDb>(self, qb: &mut QueryBuilder<DB>) {
        DB::bind_bytes(qb, self);
    }
    fn value(&self) -> Value {
        Value::Bytes(self.to_vec())
    }
}

/// A value the shared SQL reads from a column.
pub trait Column: Sized {
    /// Column `i` of `row`.
    fn get<DB: SqlDb>(row: &DB::Row, i: usize) -> Result<Self, sqlx::Error>;
}

/// A NULL where a value must be: the schema and the statement disagree.
fn unexpected_null(i: usize) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: i.to_string(),
        source: "unexpected NULL".into(),
    }
}

impl Column for i64 {
    fn get<DB: SqlDb>(row: &DB::Row, i: usize) -> Result<Self, sqlx::Error> {
        DB::get_i64(row, i)?.ok_or_else(|| unexpected_null(i))
    }
}
impl Column for Option<i64> {
    fn get<DB: SqlDb>(row: &DB::Row, i: usize) -> Result<Self, sqlx::Error> {
        DB::get_i64(row, i)
    }
}
impl Column for String {
    fn get<DB: SqlDb>(row: &DB::Row, i: usize) -> Result<Self, sqlx::Error> {
        DB::get_text(row, i)?.ok_or_else(|| unexpected_null(i))
    }
}
impl Column for Option<String> {
    fn get<DB: SqlDb>(row: &DB::Row, i: usize) -> Result<Self, sqlx::Error> {
        DB::get_text(row, i)
    }
}
impl Column for Vec<u8> {
    fn get<DB: SqlDb>(row: &DB::Row, i: usize) -> Result<Self, sqlx::Error> {
        DB::get_bytes(row, i)
    }
}

/// The parameters of a statement written with `?`s: a tuple of [`Param`]s,
/// bound in order.
pub trait Params {
    /// How many parameters: the `?`s the statement must hold.
    const LEN: usize;
    /// Binds each parameter in place of the next `?`, followed by the SQL
    /// text up to the `?` after it.
    fn bind_in<'s, DB: SqlDb>(self, q: &mut Sql<DB>, text: &mut impl Iterator<Item = &'s str>);

    /// Binds the parameters as one row of a `VALUES` list: `(?, ?, ...)`.
    fn bind_row<DB: SqlDb>(self, q: &mut Sql<DB>);
}

macro_rules! params_tuple {
    ($($name:ident),+) => {
        impl<$($name: Param),+> Params for ($($name,)+) {
            const LEN: usize = [$(stringify!($name)),+].len();
            #[allow(non_snake_case)]
            fn bind_in<'s, DB: SqlDb>(
                self,
                q: &mut Sql<DB>,
                text: &mut impl Iterator<Item = &'s str>,
            ) {
                let ($($name,)+) = self;
                $(q.bind($name).push(text.next().unwrap_or_default());)+
            }

            #[allow(non_snake_case)]
            fn bind_row<DB: SqlDb>(self, q: &mut Sql<DB>) {
                let ($($name,)+) = self;
                q.push("(");
                let mut first = true;
                $(
                    if !std::mem::take(&mut first) {
                        q.push(", ");
                    }
                    q.bind($name);
                )+
                q.push(")");
            }
        }
    };
}
params_tuple!(A);
params_tuple!(A, B);
params_tuple!(A, B, C);
params_tuple!(A, B, C, D);
params_tuple!(A, B, C, D, E);
params_tuple!(A, B, C, D, E, F);
params_tuple!(A, B, C, D, E, F, G);
params_tuple!(A, B, C, D, E, F, G, H);
params_tuple!(A, B, C, D, E, F, G, H, I);

/// One statement being built: SQL text with parameters bound in order, the
/// placeholders written by sqlx for the backend.
pub struct Sql<DB: SqlDb>(QueryBuilder<DB>, Option<Vec<Value>>);

impl<DB: SqlDb> Sql<DB> {
    /// A statement starting with `sql`, taken as it is: a `?` here is not a
    /// placeholder (only [`Sql::query`] and [`Sql::append`] make them).
    pub fn new(sql: impl Into<String>) -> Self {
        Self(QueryBuilder::new(sql), None)
    }

    /// As [`Sql::new`], also keeping a copy of each bound value, so a
    /// dialect may run the statement through its own driver API
    /// ([`super::Dialect::fetch_events`]). Costs a copy per value: for
    /// reads with a few parameters, not for inserts.
    pub fn recording(sql: impl Into<String>) -> Self {
        Self(QueryBuilder::new(sql), Some(Vec::new()))
    }

    /// The SQL text, with the backend's placeholders.
    pub fn text(&self) -> sqlx::SqlStr {
        self.0.sql()
    }

    /// The bound values in order, when [recording](Sql::recording).
    pub fn recorded(&self) -> Option<&[Value]> {
        self.1.as_deref()
    }

    /// A statement written as SQL with `?` for each of `params` (so the
    /// text itself never holds a `?`): the backend's placeholders replace
    /// them.
    pub fn query(sql: &str, params: impl Params) -> Self {
        let mut q = Self::new("");
        q.append(sql, params);
        q
    }

    /// Appends SQL written with `?` for each of `params`, as
    /// [`Sql::query`] does.
    pub fn append<P: Params>(&mut self, sql: &str, params: P) -> &mut Self {
        // Statements are static text: a mismatch is a bug in riverlog, caught
        // by the first test that runs the statement, never by a client.
        assert_eq!(
            sql.matches('?').count(),
            P::LEN,
            "one parameter per ? in {sql:?}"
        );
        let mut text = sql.split('?');
        self.push(text.next().unwrap_or_default());
        params.bind_in(self, &mut text);
        self
    }

    /// Appends SQL text as it is. Never pass values here: bind them.
    pub fn push(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        self.0.push(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Param) -> &mut Self {
        if let Some(values) = &mut self.1 {
            values.push(value.value());
        }
        value.bind_to(&mut self.0);
        self
    }

    /// Appends `(?, ?, ...)`, one placeholder per value.
    pub fn bind_list<P: Param>(&mut self, values: impl IntoIterator<Item = P>) -> &mut Self {
        self.0.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.0.push(", ");
            }
            self.bind(v);
        }
        self.0.push(")");
        self
    }

    /// Appends `VALUES (...), (...)`: one row per item, its values the
    /// tuple `row` makes of it.
    pub fn values<'a, T, P: Params>(
        &mut self,
        items: &'a [T],
        row: impl Fn(&'a T) -> P,
    ) -> &mut Self {
        self.0.push("VALUES ");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(", ");
            }
            row(item).bind_row(self);
        }
        self
    }

    /// Runs it, returning every row. A statement runs once.
    pub async fn fetch_all(
        &mut self,
        conn: &mut DB::Connection,
    ) -> Result<Vec<DB::Row>, StorageError> {
        DB::fetch_all(conn, &mut self.0).await.map_err(DB::classify)
    }

    /// Runs it, returning the first row if any.
    pub async fn fetch_optional(
        &mut self,
        conn: &mut DB::Connection,
    ) -> Result<Option<DB::Row>, StorageError> {
        Ok(self.fetch_all(conn).await?.into_iter().next())
    }

    /// Runs a statement that always returns one row (an aggregate).
    pub async fn fetch_one(&mut self, conn: &mut DB::Connection) -> Result<DB::Row, StorageError> {
        self.fetch_optional(conn).await?.ok_or_else(|| {
            StorageError::Failure(format!("no row from {:?}", self.0.sql().as_str()))
        })
    }

    /// Runs it, returning column 0 of its one row.
    pub async fn fetch_scalar<T: Column>(
        &mut self,
        conn: &mut DB::Connection,
    ) -> Result<T, StorageError> {
        let row = self.fetch_one(conn).await?;
        get::<DB, T>(&row, 0)
    }

    /// Runs it, returning how many rows it touched.
    pub async fn execute(&mut self, conn: &mut DB::Connection) -> Result<u64, StorageError> {
        DB::execute(conn, &mut self.0).await.map_err(DB::classify)
    }
}

/// Column `i` of `row`, with decode errors classified.
pub fn get<DB: SqlDb, T: Column>(row: &DB::Row, i: usize) -> Result<T, StorageError> {
    T::get::<DB>(row, i).map_err(DB::classify)
}
