DROP TABLE org_events;
