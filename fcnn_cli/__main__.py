from fcnn_cli.commands.cli import main

main()
