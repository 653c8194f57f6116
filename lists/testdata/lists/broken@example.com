descripton = "typo: never parsed"
