-- Going back loses the new event kinds' rows' constraint only; the columns stay (SQLite keeps
-- added columns harmlessly).
DROP TABLE case_alerts;
DROP TABLE closed_days;
