//! Lambda `ftc-download`: the FTC download workflow's steps (log in, request, poll, fetch, apply, full download). Its
//! environment, container and handler: `dncflow::lambda::functions::FtcDownload`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::FtcDownload>().await
}
