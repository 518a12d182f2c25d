DROP TABLE saved_reasons;
