/**
 * Functions a read may call: they neither change data nor reach outside the session. Anything not
 * listed (nextval, setval, set_config, pg_terminate_backend, lo_*, dblink*, every user-defined
 * function...) makes a statement at least a write. Names are matched without the pg_catalog prefix;
 * a schema-qualified name in any other schema is never read-safe.
 */
export const READ_SAFE_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates and window functions
  'count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'string_agg', 'array_agg', 'json_agg', 'jsonb_agg',
  'json_object_agg', 'jsonb_object_agg', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp',
  'percentile_cont', 'percentile_disc', 'mode', 'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile',
  'lag', 'lead', 'first_value', 'last_value', 'nth_value', 'corr', 'covar_pop', 'covar_samp', 'regr_slope',
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length', 'substring', 'substr',
  'btrim', 'ltrim', 'rtrim', 'trim', 'replace', 'translate', 'split_part', 'position', 'strpos', 'left', 'right', 'lpad', 'rpad',
  'concat', 'concat_ws', 'format', 'repeat', 'reverse', 'starts_with', 'overlay', 'ascii', 'chr', 'md5', 'sha224', 'sha256',
  'sha384', 'sha512', 'encode', 'decode', 'quote_ident', 'quote_literal', 'quote_nullable', 'regexp_replace', 'regexp_match',
  'regexp_matches', 'regexp_split_to_array', 'regexp_split_to_table', 'regexp_like', 'regexp_count', 'regexp_substr',
  'string_to_array', 'array_to_string', 'to_hex', 'like_escape', 'normalize', 'unistr', 'textlen',
  // numbers
  'abs', 'round', 'ceil', 'ceiling', 'floor', 'trunc', 'mod', 'power', 'pow', 'sqrt', 'cbrt', 'exp', 'ln', 'log', 'log10',
  'sign', 'div', 'greatest', 'least', 'random', 'width_bucket', 'numeric', 'gcd', 'lcm', 'pi', 'degrees', 'radians', 'scale',
  'to_char', 'to_number', 'to_date', 'to_timestamp',
  // dates and times
  'now', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday', 'date_trunc', 'date_part', 'extract',
  'date_bin', 'age', 'make_date', 'make_time', 'make_timestamp', 'make_timestamptz', 'make_interval', 'justify_days',
  'justify_hours', 'justify_interval', 'isfinite', 'timezone', 'date', 'pg_sleep', 'pg_sleep_for',
  // arrays, json, sets
  'array_length', 'array_position', 'array_positions', 'array_upper', 'array_lower', 'array_dims', 'array_ndims',
  'cardinality', 'array_append', 'array_prepend', 'array_cat', 'array_remove', 'array_replace', 'unnest', 'generate_series',
  'generate_subscripts', 'to_json', 'to_jsonb', 'row_to_json', 'array_to_json', 'json_build_object', 'jsonb_build_object',
  'json_build_array', 'jsonb_build_array', 'json_object', 'jsonb_object', 'json_array_elements', 'jsonb_array_elements',
  'json_array_elements_text', 'jsonb_array_elements_text', 'json_each', 'jsonb_each', 'json_each_text', 'jsonb_each_text',
  'json_object_keys', 'jsonb_object_keys', 'json_extract_path', 'jsonb_extract_path', 'json_extract_path_text',
  'jsonb_extract_path_text', 'jsonb_pretty', 'json_typeof', 'jsonb_typeof', 'jsonb_set', 'jsonb_insert', 'jsonb_strip_nulls',
  'jsonb_path_query', 'jsonb_path_exists', 'json_array_length', 'jsonb_array_length', 'json_populate_record', 'jsonb_to_record',
  'coalesce', 'nullif', 'num_nonnulls', 'num_nulls',
  // session and catalog information (psql's \d commands use these)
  'version', 'current_database', 'current_schema', 'current_schemas', 'current_user', 'session_user', 'current_setting',
  'pg_backend_pid', 'pg_typeof', 'format_type', 'pg_get_userbyid', 'pg_table_is_visible', 'pg_type_is_visible',
  'pg_function_is_visible', 'pg_collation_is_visible', 'pg_get_expr', 'obj_description', 'col_description', 'shobj_description',
  'pg_get_constraintdef', 'pg_get_indexdef', 'pg_get_triggerdef', 'pg_get_viewdef', 'pg_get_ruledef', 'pg_get_functiondef',
  'pg_get_function_arguments', 'pg_get_function_result', 'pg_get_function_identity_arguments', 'pg_get_partkeydef',
  'pg_get_partition_constraintdef', 'pg_get_statisticsobjdef_columns', 'pg_get_serial_sequence', 'pg_encoding_to_char',
  'pg_size_pretty', 'pg_relation_size', 'pg_total_relation_size', 'pg_table_size', 'pg_indexes_size', 'pg_database_size',
  'pg_tablespace_location', 'pg_is_in_recovery', 'pg_postmaster_start_time', 'pg_get_keywords', 'pg_partition_tree',
  'pg_partition_root', 'pg_relation_is_publishable', 'has_table_privilege', 'has_schema_privilege', 'has_column_privilege',
  'has_database_privilege', 'has_function_privilege', 'pg_has_role', 'array_in', 'pg_char_to_encoding', 'pg_column_size',
  'txid_current_if_assigned', 'pg_current_xact_id_if_assigned', 'inet_client_addr', 'inet_server_addr', 'host', 'family',
  'pg_partition_ancestors', 'pg_get_statisticsobjdef', 'pg_get_statisticsobjdef_expressions', 'pg_options_to_table',
  'pg_get_replica_identity_index', 'pg_relation_filenode', 'pg_describe_object', 'pg_identify_object', 'pg_get_object_address',
  'array_agg', 'pg_stat_get_numscans', 'pg_get_publication_tables', 'pg_sequence_parameters', 'pg_get_triggerdef',
]);

/**
 * Functions that administer the server rather than change data: signalling other backends,
 * configuration, server files, WAL and replication, statistics. A statement calling one is `admin`,
 * as the statements that do the same are (a write role that may call one should still not, under
 * a reviewer's approval of a write).
 */
export const ADMIN_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_terminate_backend', 'pg_cancel_backend', 'pg_signal_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote',
  'pg_log_backend_memory_contexts', 'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_ls_logdir',
  'pg_ls_waldir', 'pg_ls_tmpdir', 'pg_ls_archive_statusdir', 'pg_file_write', 'pg_file_rename', 'pg_file_unlink', 'lo_import',
  'lo_export', 'pg_switch_wal', 'pg_create_restore_point', 'pg_backup_start', 'pg_backup_stop', 'pg_start_backup',
  'pg_stop_backup', 'pg_wal_replay_pause', 'pg_wal_replay_resume', 'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot', 'pg_drop_replication_slot', 'pg_copy_physical_replication_slot',
  'pg_copy_logical_replication_slot', 'pg_replication_slot_advance', 'pg_logical_emit_message', 'pg_replication_origin_create',
  'pg_replication_origin_drop', 'pg_stat_reset', 'pg_stat_reset_shared', 'pg_stat_reset_single_table_counters',
  'pg_stat_reset_single_function_counters', 'pg_stat_reset_slru', 'pg_stat_reset_replication_slot',
  'pg_import_system_collations',
]);
