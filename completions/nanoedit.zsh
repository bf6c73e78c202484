#compdef nanoedit

_nanoedit_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _NANOEDIT_COMPLETE=complete_zsh nanoedit)
}

compdef _nanoedit_completion nanoedit
