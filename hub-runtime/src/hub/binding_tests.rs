//! The limits without a connection: each refusal, in order, with the reference server's texts.

use tokio_util::sync::CancellationToken;

use super::*;
use crate::options::HubOptions;

const ECHO: MethodDef = MethodDef {
    name: "Echo",
    arguments: 1,
    streams: 0,
    kind: MethodKind::Plain,
    authorize: &[],
};

const UPLOAD: MethodDef = MethodDef {
    name: "Upload",
    arguments: 0,
    streams: 2,
    kind: MethodKind::Plain,
    authorize: &[],
};

const UPLOAD_ONE: MethodDef = MethodDef {
    name: "UploadOne",
    arguments: 0,
    streams: 1,
    kind: MethodKind::Plain,
    authorize: &[],
};

const COUNTER: MethodDef = MethodDef {
    name: "Counter",
    arguments: 0,
    streams: 0,
    kind: MethodKind::Stream,
    authorize: &[],
};

fn scheduler(per_second: Option<u32>) -> Scheduler {
    Scheduler::new(&HubOptions {
        max_invocations_per_second: per_second,
        ..HubOptions::default()
    })
}

fn request<'a>(kind: MethodKind, arguments: usize, id: Option<&'a str>, stream_ids: &'a [String]) -> Request<'a> {
    Request {
        kind,
        arguments,
        invocation_id: id,
        stream_ids,
    }
}

#[test]
fn a_matching_invocation_passes() {
    let mut scheduler = scheduler(None);
    let plain = request(MethodKind::Plain, 1, Some("1"), &[]);
    assert_eq!(check(&ECHO, &plain, &mut scheduler, 64), Ok(()));
    let ids = ["a".to_string(), "b".to_string()];
    assert_eq!(
        check(&UPLOAD, &request(MethodKind::Plain, 0, None, &ids), &mut scheduler, 64),
        Ok(())
    );
}

#[test]
fn the_kind_and_the_counts_must_match() {
    let mut scheduler = scheduler(None);
    let streaming = request(MethodKind::Stream, 1, Some("1"), &[]);
    let refused = check(&ECHO, &streaming, &mut scheduler, 64);
    assert_eq!(
        refused,
        Err(Refusal::KindMismatch {
            method: MethodKind::Plain
        })
    );
    let plain = request(MethodKind::Plain, 0, Some("1"), &[]);
    let refused = check(&COUNTER, &plain, &mut scheduler, 64);
    assert_eq!(
        refused,
        Err(Refusal::KindMismatch {
            method: MethodKind::Stream
        })
    );
    let two = request(MethodKind::Plain, 2, Some("1"), &[]);
    let refused = check(&ECHO, &two, &mut scheduler, 64);
    assert_eq!(refused, Err(Refusal::ArgumentCount { given: 2, expected: 1 }));
    let one_stream = ["a".to_string()];
    let refused = check(
        &UPLOAD,
        &request(MethodKind::Plain, 0, None, &one_stream),
        &mut scheduler,
        64,
    );
    assert_eq!(refused, Err(Refusal::StreamCount { given: 1, expected: 2 }));
}

#[test]
fn ids_in_use_are_refused() {
    let mut scheduler = scheduler(None);
    scheduler.add_stream("1".into(), CancellationToken::new());
    let again = request(MethodKind::Stream, 0, Some("1"), &[]);
    let refused = check(&COUNTER, &again, &mut scheduler, 64);
    assert_eq!(refused, Err(Refusal::InvocationIdInUse("1".into())));
    let twice = ["a".to_string(), "a".to_string()];
    let refused = check(
        &UPLOAD,
        &request(MethodKind::Plain, 0, None, &twice),
        &mut scheduler,
        64,
    );
    assert_eq!(refused, Err(Refusal::StreamIdInUse("a".into())));
    let _reading = scheduler.open_upload("b".into(), 1);
    let running = ["c".to_string(), "b".to_string()];
    let refused = check(
        &UPLOAD,
        &request(MethodKind::Plain, 0, None, &running),
        &mut scheduler,
        64,
    );
    assert_eq!(refused, Err(Refusal::StreamIdInUse("b".into())));
    drop(scheduler.open_upload("d".into(), 1));
    let finished = ["c".to_string(), "d".to_string()];
    let reused = check(
        &UPLOAD,
        &request(MethodKind::Plain, 0, None, &finished),
        &mut scheduler,
        64,
    );
    assert_eq!(reused, Ok(()), "an upload nobody reads any more frees its id");
}

#[test]
fn streams_and_rate_have_limits() {
    let mut scheduler = scheduler(Some(1));
    scheduler.add_stream("1".into(), CancellationToken::new());
    let ids = ["a".to_string(), "b".to_string()];
    let uploads = request(MethodKind::Plain, 0, None, &ids);
    let refused = check(&UPLOAD, &uploads, &mut scheduler, 2);
    assert_eq!(refused, Err(Refusal::TooManyStreams { max: 2 }));
    let plain = request(MethodKind::Plain, 1, None, &[]);
    assert_eq!(
        check(&ECHO, &plain, &mut scheduler, 0),
        Ok(()),
        "plain calls open no stream"
    );
    assert_eq!(check(&ECHO, &plain, &mut scheduler, 0), Err(Refusal::TooFast));
}

#[test]
fn refusals_are_answered_with_the_reference_texts() {
    let cases = [
        (
            Refusal::UnknownMethod,
            "Failed to invoke 'echo' due to an error on the server. HubException: Method does not exist.",
            Answer::Error,
        ),
        (
            Refusal::KindMismatch {
                method: MethodKind::Plain,
            },
            "The client attempted to invoke the non-streaming 'echo' method with a streaming invocation.",
            Answer::Error,
        ),
        (
            Refusal::KindMismatch {
                method: MethodKind::Stream,
            },
            "The client attempted to invoke the streaming 'echo' method with a non-streaming invocation.",
            Answer::Error,
        ),
        (
            Refusal::ArgumentCount { given: 2, expected: 1 },
            "Invocation provides 2 argument(s) but target expects 1.",
            Answer::Binding,
        ),
        (
            Refusal::StreamCount { given: 1, expected: 2 },
            "Client sent 1 stream(s), Hub method expects 2.",
            Answer::Hub,
        ),
        (
            Refusal::InvocationIdInUse("7".into()),
            "Invocation ID '7' is already in use.",
            Answer::Error,
        ),
        (
            Refusal::StreamIdInUse("s".into()),
            "Stream ID 's' is already in use.",
            Answer::Error,
        ),
        (
            Refusal::TooManyStreams { max: 3 },
            "Too many streams: a connection may have at most 3 open at once.",
            Answer::Hub,
        ),
        (Refusal::TooFast, "Too many invocations: slow down.", Answer::Hub),
    ];
    for (refusal, text, answer) in cases {
        assert_eq!(refusal.text("echo"), text);
        assert_eq!(refusal.answer_kind(), answer, "{refusal:?}");
    }
}

#[test]
fn uploads_nobody_reads_do_not_count_against_the_stream_limit() {
    let mut scheduler = scheduler(None);
    // Two calls whose methods ended (failed, or refused by a filter) before their client
    // finished streaming: their uploads are no longer read.
    drop(scheduler.open_upload("a".into(), 1));
    drop(scheduler.open_upload("b".into(), 1));
    let next = ["c".to_string()];
    let allowed = check(
        &UPLOAD_ONE,
        &request(MethodKind::Plain, 0, None, &next),
        &mut scheduler,
        2,
    );
    assert_eq!(allowed, Ok(()));
    let _reading = scheduler.open_upload("c".into(), 1);
    let _reading_too = scheduler.open_upload("d".into(), 1);
    let over = ["e".to_string()];
    let refused = check(
        &UPLOAD_ONE,
        &request(MethodKind::Plain, 0, None, &over),
        &mut scheduler,
        2,
    );
    assert_eq!(refused, Err(Refusal::TooManyStreams { max: 2 }));
}
