//! Lambda `ftc-download`: the FTC download workflow's steps (log in, request, poll, fetch, apply, full download). Its
//! environment, container and handler: `dncflow_lambda::FtcDownload`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::FtcDownload>().await
}
