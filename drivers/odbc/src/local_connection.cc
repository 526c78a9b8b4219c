#include "xa/odbc/local_connection.h"

#include <utility>

#include "drivers/odbc/src/connection_string.h"
#include "drivers/odbc/src/odbc_session.h"
#include "src/base/escape.h"

namespace xa::odbc {
namespace {

// The statement's first words, for messages (never its values).
std::string_view Head(std::string_view sql) {
  size_t end = 0;
  for (int words = 0; words < 3 && end != std::string_view::npos; ++words) {
    end = sql.find(' ', end + (words == 0 ? 0 : 1));
  }
  return sql.substr(0, end == std::string_view::npos ? std::min<size_t>(sql.size(), 40) : end);
}

}  // namespace

class LocalConnection::Impl {
 public:
  Impl(Dialect dialect) : dialect_(dialect) {}
  Dialect dialect_;
  internal::OdbcSession session_;

  Status Failed(std::string_view what, const internal::Diagnostics& diag) {
    Status status = internal::StatementError(what, diag, "");
    if (status.code() == Code::kRmFail) session_.MarkLost();
    return status;
  }
};

LocalConnection::LocalConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalConnection::~LocalConnection() {
  if (impl_->session_.connected() && !impl_->session_.lost()) Rollback();
}

Result<std::unique_ptr<LocalConnection>> LocalConnection::Open(const OdbcOptions& options) {
  if (options.dialect != Dialect::kMariaDb && options.dialect != Dialect::kPostgres) {
    return Status(Code::kInval, "LocalConnection: name the database (OdbcOptions::dialect "
                                "kMariaDb or kPostgres)");
  }
  if (options.dsn.empty() == options.connection_string.empty()) {
    return Status(Code::kInval, "LocalConnection: set exactly one of OdbcOptions::dsn and "
                                "OdbcOptions::connection_string");
  }
  auto impl = std::make_unique<Impl>(options.dialect);
  impl->session_.set_statement_timeout(options.statement_timeout);
  internal::Diagnostics diag;
  const std::string where =
      options.dsn.empty() ? std::string("the connection string")
                          : "data source '" + ::xa::internal::EscapeForMessage(options.dsn) + "'";
  if (!impl->session_.Connect(
          internal::OdbcConnectionString(
              options, options.dialect,
              internal::DialectConnectionAttributes(options, options.dialect)),
          options.login_timeout, &diag)) {
    const std::string& state = diag.primary().sqlstate;
    bool config = state.rfind("28", 0) == 0 || state.rfind("IM", 0) == 0 ||
                  diag.primary().native_error == 1045;
    return Status(config ? Code::kConfig : Code::kRmFail,
                  "cannot connect to " + where + " as '" +
                      ::xa::internal::EscapeForMessage(options.user) + "': " +
                      ::xa::internal::EscapeForMessage(diag.Describe()));
  }
  if (!impl->session_.SetAutocommit(false, &diag)) {
    return impl->Failed("switching autocommit off", diag);
  }
  return std::unique_ptr<LocalConnection>(new LocalConnection(std::move(impl)));
}

Dialect LocalConnection::dialect() const noexcept { return impl_->dialect_; }

Result<int64_t> LocalConnection::Execute(std::string_view sql) {
  internal::Diagnostics diag;
  int64_t rows = 0;
  if (!impl_->session_.Execute(sql, &diag, &rows)) return impl_->Failed(Head(sql), diag);
  return rows < 0 ? 0 : rows;
}

Result<std::vector<LocalConnection::Row>> LocalConnection::Query(std::string_view sql) {
  internal::Diagnostics diag;
  std::vector<internal::Row> rows;
  if (!impl_->session_.Query(sql, &rows, &diag)) return impl_->Failed(Head(sql), diag);
  return rows;
}

Status LocalConnection::Commit() {
  internal::Diagnostics diag;
  if (!impl_->session_.EndTransaction(true, &diag)) return impl_->Failed("COMMIT", diag);
  return Status::Ok();
}

void LocalConnection::Rollback() noexcept {
  if (!impl_->session_.connected()) return;
  internal::Diagnostics diag;
  if (!impl_->session_.EndTransaction(false, &diag)) {
    if (diag.connection_dead) impl_->session_.MarkLost();
  }
}

bool LocalConnection::lost() const noexcept { return impl_->session_.lost(); }
SQLHDBC LocalConnection::handle() const noexcept { return impl_->session_.dbc(); }

}  // namespace xa::odbc
