description = "ok"
descripton = "typo"
