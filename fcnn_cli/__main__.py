from fcnn_cli.commands import main

main()
