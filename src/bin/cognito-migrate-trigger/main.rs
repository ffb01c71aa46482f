//! `cognito-migrate-trigger`: the Lambda user-migration trigger (filled in by the trigger work).

fn main() {
    eprintln!("cognito-migrate-trigger: not built yet");
    std::process::exit(3);
}
