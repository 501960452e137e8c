"""Operations: schedules, locks, run history, freshness, alerts, structured logs, KPI cockpit."""
