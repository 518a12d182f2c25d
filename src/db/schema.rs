// Written by hand to match migrations/sqlite: only portable types, so the same
// schema serves every variant of the connection enum.

diesel::table! {
    organisations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        reference_prefix -> Text,
        timezone -> Text,
        secretary_email -> Text,
        appeal_window_days -> Integer,
        response_days -> Integer,
        escalation_window_days -> Integer,
        committee_target_days -> Integer,
        created_at -> Timestamp,
        nation -> Text,
        appeal_window_count -> Text,
        response_count -> Text,
        escalation_window_count -> Text,
        committee_target_count -> Text,
        response_reminder_days -> Integer,
        committee_reminder_days -> Integer,
        info_answer_days -> Integer,
        accessibility_statement -> Nullable<Text>,
        public_note -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    memberships (id) {
        id -> Text,
        user_id -> Text,
        organisation_id -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        user_id -> Text,
        organisation_id -> Text,
        token_hash -> Text,
        label -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_by -> Nullable<Text>,
    }
}

diesel::table! {
    policy_rules (id) {
        id -> Text,
        organisation_id -> Text,
        code -> Text,
        title -> Text,
        summary -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        organisation_id -> Text,
        reference -> Text,
        ref_year -> Integer,
        ref_number -> Integer,
        kind -> Text,
        state -> Text,
        overdue -> Bool,
        due_at -> Nullable<Timestamp>,
        due_kind -> Nullable<Text>,
        platform -> Text,
        content_url -> Text,
        content_text -> Text,
        author_name -> Nullable<Text>,
        author_email -> Nullable<Text>,
        explanation -> Text,
        cited_rules -> Text,
        notice_method -> Nullable<Text>,
        reporter_name -> Nullable<Text>,
        reporter_email -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        outcome -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        paused_days_left -> Nullable<Integer>,
        info_due_at -> Nullable<Timestamp>,
        next_reminder_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    case_tokens (id) {
        id -> Text,
        case_id -> Text,
        party -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        outbox_id -> Nullable<Text>,
    }
}

diesel::table! {
    case_events (id) {
        id -> Text,
        case_id -> Text,
        seq -> Integer,
        kind -> Text,
        from_state -> Nullable<Text>,
        to_state -> Text,
        actor_kind -> Text,
        actor_user_id -> Nullable<Text>,
        actor_role -> Nullable<Text>,
        outcome -> Nullable<Text>,
        body -> Nullable<Text>,
        created_at -> Timestamp,
        token_issued_by -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        organisation_id -> Text,
        case_id -> Nullable<Text>,
        event_id -> Nullable<Text>,
        template -> Text,
        recipient_kind -> Text,
        to_address -> Text,
        subject -> Text,
        body_text -> Text,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        body_html -> Nullable<Text>,
        claim_id -> Nullable<Text>,
        sending_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sweep_failures (case_id) {
        case_id -> Text,
        organisation_id -> Text,
        error -> Text,
        failures -> Integer,
        first_at -> Timestamp,
        last_at -> Timestamp,
    }
}

diesel::table! {
    org_events (id) {
        id -> Text,
        organisation_id -> Text,
        actor_user_id -> Nullable<Text>,
        token_issued_by -> Nullable<Text>,
        kind -> Text,
        subject -> Text,
        detail -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    closed_days (id) {
        id -> Text,
        nation -> Nullable<Text>,
        organisation_id -> Nullable<Text>,
        day -> Date,
        title -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    case_alerts (id) {
        id -> Text,
        case_id -> Text,
        kind -> Text,
        due_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> organisations (organisation_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(policy_rules -> organisations (organisation_id));
diesel::joinable!(cases -> organisations (organisation_id));
diesel::joinable!(case_tokens -> cases (case_id));
diesel::joinable!(case_events -> cases (case_id));

diesel::table! {
    saved_reasons (id) {
        id -> Text,
        organisation_id -> Text,
        step -> Text,
        title -> Text,
        body -> Text,
        rule_codes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    users,
    memberships,
    api_tokens,
    policy_rules,
    cases,
    case_tokens,
    case_events,
    outbox,
    sessions,
    closed_days,
    case_alerts,
    trusted_devices,
    sweep_failures,
    org_events,
    saved_reasons,
);

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        organisation_id -> Nullable<Text>,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));

diesel::table! {
    trusted_devices (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}
