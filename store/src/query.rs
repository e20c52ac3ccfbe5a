//! A small builder for `WHERE` clauses with numbered `$n` placeholders, so optional filters need
//! neither string-pasted values nor `($1 IS NULL OR ...)` tricks that defeat indexes.

use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;
use sqlx::Any;

enum Value {
    I64(i64),
    Str(String),
}

/// Conditions joined with `AND`, and the values they bind, in order.
#[derive(Default)]
pub struct Filter {
    conditions: Vec<String>,
    values: Vec<Value>,
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Filter {
    pub fn new() -> Self {
        Self::default()
    }

    fn next(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    /// A condition with no bound value; `sql` must be a constant.
    pub fn raw(&mut self, sql: &'static str) {
        self.conditions.push(sql.to_owned());
    }

    pub fn eq_i64(&mut self, column: &'static str, v: i64) {
        let p = self.next(Value::I64(v));
        self.conditions.push(format!("{column} = {p}"));
    }

    pub fn lt_i64(&mut self, column: &'static str, v: i64) {
        let p = self.next(Value::I64(v));
        self.conditions.push(format!("{column} < {p}"));
    }

    pub fn gt_i64(&mut self, column: &'static str, v: i64) {
        let p = self.next(Value::I64(v));
        self.conditions.push(format!("{column} > {p}"));
    }

    pub fn eq_str(&mut self, column: &'static str, v: &str) {
        let p = self.next(Value::Str(v.to_owned()));
        self.conditions.push(format!("{column} = {p}"));
    }

    /// Case-insensitive (for ASCII) substring match.
    pub fn contains(&mut self, column: &'static str, v: &str) {
        let p = self.next(Value::Str(format!("%{}%", escape_like(&v.to_lowercase()))));
        self.conditions
            .push(format!("LOWER({column}) LIKE {p} ESCAPE '\\'"));
    }

    pub fn starts_with(&mut self, column: &'static str, v: &str) {
        let p = self.next(Value::Str(format!("{}%", escape_like(v))));
        self.conditions
            .push(format!("{column} LIKE {p} ESCAPE '\\'"));
    }

    /// `WHERE a AND b ...`, or nothing.
    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// Binds the values in placeholder order.
    pub fn bind_all<'q, O>(
        &self,
        mut query: QueryAs<'q, Any, O, AnyArguments>,
    ) -> QueryAs<'q, Any, O, AnyArguments> {
        for v in &self.values {
            query = match v {
                Value::I64(n) => query.bind(*n),
                Value::Str(s) => query.bind(s.clone()),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut f = Filter::new();
        f.raw("active = 1");
        f.eq_i64("market_id", 3);
        f.contains("name", "50%_off");
        assert_eq!(
            f.where_clause(),
            "WHERE active = 1 AND market_id = $1 AND LOWER(name) LIKE $2 ESCAPE '\\'"
        );
        assert!(matches!(&f.values[1], Value::Str(s) if s == "%50\\%\\_off%"));
    }

    #[test]
    fn no_conditions_means_no_where() {
        assert_eq!(Filter::new().where_clause(), "");
    }
}
